"""Where the time of one log batch goes: the shipped write path against alternatives.

    .venv/bin/python -m bench.log_write_paths [--quick] [--batch 50000] [--repeat 3] [--json]

In this process, on its own PostgreSQL database (migrated, so the same table, indexes and
integrity triggers), each path writes ``--batch`` lines ``--repeat`` times, as one flush of one
daemon instance would (fenced by ``hold_generation`` in the same transaction). Reported per
path: wall time, this process's CPU and the PostgreSQL backends' CPU (psutil), and lines/s.
CPU seconds say more than wall time on a machine that is busy with other work.

- ``write_log_batch``: the shipped function (ids from the sequence, COPY, then publish).
- ``store only``: the same without publishing (fence, ids, COPY, commit).
- ``unnest INSERT ... ON CONFLICT ... RETURNING``: the write path before COPY, each column
  sent as one ``'{...}'`` text array parameter.
- ``COPY + SELECT ids``: COPY with the ids left to the column default, then one SELECT for
  them (the alternative to allocating them first).
- ``publish only``: the shipped event building and PUBLISH for the batch, without the write.
- ``COPY alone``: into ``daemon_logs`` (its statement-level integrity trigger included), then
  into scratch copies of it: with the per-row foreign key it had before migration 0009,
  with no integrity check at all, and without the secondary indexes either, to price each.

``--quick`` is a smoke run (5,000 lines, once). With ``--json`` the last line of stdout is
one JSON object with every figure.
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
from stashhog.services.daemon_logs import (
    LogLine,
    _store,
    copy_text,
    publish_log_lines,
    write_log_batch,
)
from stashhog.services.fencing import hold_generation

FIELDS = "(daemon_id, generation, level, message, created_at, seq)"
COLUMNS = f"daemon_logs {FIELDS}"
# The statement write_log_batch ran before COPY (each column one text array literal).
TEXT_UNNEST = text(
    f"INSERT INTO {COLUMNS} SELECT CAST(:daemon_id AS uuid), :generation, t.level, t.message, "
    "t.created_at, t.seq FROM unnest(CAST(:levels AS text[]), CAST(:messages AS text[]), "
    "CAST(:created AS timestamptz[]), CAST(:seqs AS bigint[])) AS t(level, message, "
    "created_at, seq) ON CONFLICT (daemon_id, generation, seq) DO NOTHING RETURNING id, seq"
)


def array_literal(values) -> str:
    quoted = (str(value).replace("\\", "\\\\").replace('"', '\\"') for value in values)
    return "{" + ",".join(f'"{value}"' for value in quoted) + "}"


def store_only(daemon_id, generation, lines) -> None:
    _store(daemon_id, generation, lines, retry=False)


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
    """COPY ``lines`` with the ids left to the column default (the shipped text encoding)."""
    data = copy_text(daemon_id, generation, lines, range(len(lines)))
    rows = b"".join(row.partition(b"\t")[2] + b"\n" for row in data.split(b"\n") if row)
    cursor.copy_expert(f"COPY {table_name} {FIELDS} FROM STDIN", io.BytesIO(rows), size=len(rows))


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
    """COPY alone into a table (see ``SCRATCH``), to price each integrity check and index."""

    def write(daemon_id, generation, lines) -> None:
        with db.engine.begin() as conn:
            copy_rows(
                conn.connection.dbapi_connection.cursor(), table_name, daemon_id, generation, lines
            )

    return write


# LIKE copies neither foreign keys nor triggers.
SCRATCH = [
    "CREATE TABLE logs_row_fk (LIKE daemon_logs INCLUDING DEFAULTS INCLUDING INDEXES)",
    "ALTER TABLE logs_row_fk ADD FOREIGN KEY (daemon_id) REFERENCES daemons (id) ON DELETE CASCADE",
    "CREATE TABLE logs_no_fk (LIKE daemon_logs INCLUDING DEFAULTS INCLUDING INDEXES)",
    "CREATE TABLE logs_pk_only (LIKE daemon_logs INCLUDING DEFAULTS)",
    "ALTER TABLE logs_pk_only ADD PRIMARY KEY (id)",
]

PATHS = {
    "write_log_batch (shipped: ids + COPY + publish)": write_log_batch,
    "store only (shipped: fence, ids, COPY, commit)": store_only,
    "unnest INSERT ... RETURNING (before COPY)": text_unnest,
    "COPY + SELECT ids": copy_and_select,
    "publish only (shipped events)": publish_only,
    "COPY alone into daemon_logs (statement trigger)": copy_into("daemon_logs"),
    "COPY alone, per-row foreign key (before 0009)": copy_into("logs_row_fk"),
    "COPY alone, no integrity check": copy_into("logs_no_fk"),
    "COPY alone, no check, no secondary indexes": copy_into("logs_pk_only"),
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
    parser.add_argument("--quick", action="store_true", help="a smoke run: 5,000 lines, once")
    add_json_option(parser)
    args = parser.parse_args()
    if args.quick:
        args.batch, args.repeat = 5000, 1
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
