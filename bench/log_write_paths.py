"""Where the time of one log batch goes: the shipped write path against alternatives.

    .venv/bin/python -m bench.log_write_paths [--batch 50000] [--repeat 3] [--json]

In this process, on its own PostgreSQL database (migrated, so the same table, indexes and
foreign key), each path writes ``--batch`` lines ``--repeat`` times, as one flush of one
daemon instance would (fenced by ``hold_generation`` in the same transaction). Reported per
path: wall time, this process's CPU and the PostgreSQL backends' CPU (psutil), and lines/s.
CPU seconds say more than wall time on a machine that is busy with other work.

- ``write_log_batch``: the shipped function (unnest INSERT ... RETURNING, then publish).
- ``insert only``: its INSERT alone; psycopg2 sends each column as ``ARRAY['..'::timestamptz,
  ...]``, a statement of several MB that the server must parse.
- ``unnest, text array literals``: the same INSERT with each column sent as one ``'{...}'``
  string parameter.
- ``COPY + SELECT ids``: ``COPY ... FROM STDIN`` and then one SELECT for the new ids.
- ``publish only``: the shipped event building and PUBLISH for the batch, without the INSERT.
- ``COPY alone``: into ``daemon_logs``, then into scratch copies of it without the foreign key
  (a trigger per row) and without the secondary indexes, to price each.

With ``--json`` the last line of stdout is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import io
import time
from datetime import UTC, datetime

from sqlalchemy import text

from bench.harness import (
    BenchServices,
    add_json_option,
    backend_pids,
    cpu_seconds,
    machine_load,
    note,
    print_json,
    table,
)
from stashhog.extensions import db
from stashhog.services.daemon_logs import LogLine, _insert, publish_log_lines, write_log_batch
from stashhog.services.fencing import hold_generation

FIELDS = "(daemon_id, generation, level, message, created_at, seq)"
COLUMNS = f"daemon_logs {FIELDS}"
TEXT_UNNEST = text(
    f"INSERT INTO {COLUMNS} SELECT CAST(:daemon_id AS uuid), :generation, t.level, t.message, "
    "t.created_at, t.seq FROM unnest(CAST(:levels AS text[]), CAST(:messages AS text[]), "
    "CAST(:created AS timestamptz[]), CAST(:seqs AS bigint[])) AS t(level, message, "
    "created_at, seq) RETURNING id, seq"
)


def array_literal(values) -> str:
    quoted = (str(value).replace("\\", "\\\\").replace('"', '\\"') for value in values)
    return "{" + ",".join(f'"{value}"' for value in quoted) + "}"


def insert_only(daemon_id, generation, lines) -> None:
    with db.engine.begin() as conn:
        hold_generation(conn, daemon_id, generation)
        _insert(conn, daemon_id, generation, lines)


def text_unnest(daemon_id, generation, lines) -> None:
    with db.engine.begin() as conn:
        hold_generation(conn, daemon_id, generation)
        params = {
            "daemon_id": str(daemon_id),
            "generation": generation,
            "levels": array_literal(line.level for line in lines),
            "messages": array_literal(line.message for line in lines),
            "created": array_literal(line.created_at.isoformat() for line in lines),
            "seqs": "{" + ",".join(str(line.seq) for line in lines) + "}",
        }
        conn.execute(TEXT_UNNEST, params).all()


def copy_rows(cursor, table_name: str, daemon_id, generation, lines) -> None:
    def escape(value: str) -> str:
        return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")

    buffer = io.StringIO()
    for line in lines:
        buffer.write(
            f"{daemon_id}\t{generation}\t{line.level}\t{escape(line.message)}\t"
            f"{line.created_at.isoformat()}\t{line.seq}\n"
        )
    buffer.seek(0)
    cursor.copy_expert(f"COPY {table_name} {FIELDS} FROM STDIN", buffer)


def copy_and_select(daemon_id, generation, lines) -> None:
    with db.engine.begin() as conn:
        hold_generation(conn, daemon_id, generation)
        copy_rows(
            conn.connection.dbapi_connection.cursor(), "daemon_logs", daemon_id, generation, lines
        )
        conn.execute(
            text(
                "SELECT id, seq FROM daemon_logs WHERE daemon_id = :d AND generation = :g "
                "AND seq BETWEEN :first AND :last"
            ),
            {"d": daemon_id, "g": generation, "first": lines[0].seq, "last": lines[-1].seq},
        ).all()


def publish_only(daemon_id, generation, lines) -> None:
    publish_log_lines(daemon_id, generation, lines, {line.seq: line.seq for line in lines})


def copy_into(table_name: str):
    """COPY alone into a scratch copy of the table (see ``SCRATCH``), to price the foreign
    key's per-row trigger and the secondary indexes."""

    def write(daemon_id, generation, lines) -> None:
        with db.engine.begin() as conn:
            copy_rows(
                conn.connection.dbapi_connection.cursor(), table_name, daemon_id, generation, lines
            )

    return write


SCRATCH = [
    "CREATE TABLE logs_no_fk (LIKE daemon_logs INCLUDING DEFAULTS INCLUDING INDEXES)",
    "CREATE TABLE logs_pk_only (LIKE daemon_logs INCLUDING DEFAULTS)",
    "ALTER TABLE logs_pk_only ADD PRIMARY KEY (id)",
]

PATHS = {
    "write_log_batch (shipped: insert + publish)": write_log_batch,
    "insert only (shipped statement)": insert_only,
    "unnest, text array literals": text_unnest,
    "COPY + SELECT ids": copy_and_select,
    "publish only (shipped events)": publish_only,
    "COPY alone into daemon_logs": copy_into("daemon_logs"),
    "COPY alone, same table without the foreign key": copy_into("logs_no_fk"),
    "COPY alone, without the FK and secondary indexes": copy_into("logs_pk_only"),
}


def run_path(bench: BenchServices, write, daemon_id, seqs, batch: int, repeat: int):
    """Returns wall, this process's CPU and the backends' CPU, in seconds per batch."""
    conn = bench.pg_connect()
    walls, clients, servers = [], [], []
    for _ in range(repeat):
        now = datetime.now(UTC)
        lines = [LogLine(next(seqs), "INFO", f"line {n} of a batch", now) for n in range(batch)]
        backends = backend_pids(conn)
        before, client = cpu_seconds(backends), time.process_time()
        began = time.perf_counter()
        write(daemon_id, 1, lines)
        walls.append(time.perf_counter() - began)
        clients.append(time.process_time() - client)
        after = cpu_seconds(backend_pids(conn))
        servers.append(sum(value - before.get(pid, 0.0) for pid, value in after.items()))
    conn.close()
    return min(walls), min(clients), min(servers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=50_000, help="lines per batch (MAX_BATCH)")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many per path")
    add_json_option(parser)
    args = parser.parse_args()
    paths = []
    with BenchServices() as bench:
        note(machine_load())
        daemon_id = bench.create_daemon("TEST_BURST", {"lines": 0})
        seqs = iter(range(1, 10**9))
        with bench.app.app_context():
            db.session.execute(
                text("UPDATE daemons SET generation = 1 WHERE id = :id"), {"id": daemon_id}
            )
            for statement in SCRATCH:
                db.session.execute(text(statement))
            db.session.commit()
            for label, write in PATHS.items():
                timing = run_path(bench, write, daemon_id, seqs, args.batch, args.repeat)
                paths.append(path_figures(label, args.batch, *timing))
        note(machine_load())
    print(f"\none batch of {args.batch:,} lines, best of {args.repeat}")
    headers = ["path", "wall s", "client CPU s", "PG CPU s", "lines/s", "lines/CPU-s"]
    print(table(headers, [table_row(path) for path in paths]))
    if args.json:
        shipped = paths[0]  # write_log_batch
        print_json(
            "log_write_paths",
            {
                "batch": args.batch,
                "repeat": args.repeat,
                "shipped_lines_per_s": shipped["lines_per_s"],
                "shipped_lines_per_cpu_s": shipped["lines_per_cpu_s"],
                "paths": paths,
            },
        )


def table_row(path: dict) -> list[str]:
    seconds = (f"{path[key]:.3f}" for key in ("wall_s", "client_cpu_s", "pg_cpu_s"))
    rates = (f"{path[key] or 0:,}" for key in ("lines_per_s", "lines_per_cpu_s"))
    return [path["path"], *seconds, *rates]


def path_figures(label: str, batch: int, wall: float, client: float, server: float) -> dict:
    """One path's figures (seconds per batch, lines per second), as --json names them."""
    return {
        "path": label,
        "wall_s": round(wall, 3),
        "client_cpu_s": round(client, 3),
        "pg_cpu_s": round(server, 3),
        "lines_per_s": round(batch / wall),
        "lines_per_cpu_s": round(batch / (client + server)) if client + server else None,
    }


if __name__ == "__main__":
    main()
