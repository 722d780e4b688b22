"""Observability at scale: log search latency and retention's prune rate, with the ingest
rate while pruning, over millions of log lines.

    .venv/bin/python -m bench.observability [--rows 10000000] [--quick] [--json]

On its own PostgreSQL database (migrated: the same indexes, the GIN full-text index
included) one daemon gets ``--rows`` lines from one ``INSERT … SELECT generate_series``
(a word that occurs in every line, one in 1 of 1,000, one in 1 of 1,000,000, and a
phrase). Then:

- search: ``GET /api/logs``'s query (``search.search_logs``, newest 100) for each term,
  median of 5 after a warm-up;
- ingest alone: ``write_log_batch`` batches of 5,000 lines for 5 s;
- search while ingesting: the same queries (and a word only the new lines carry) every
  0.5 s for SEARCH_INGEST_SECONDS while that ingest runs flat out: median and max;
- prune: ``log_max_lines`` set to half the rows, ``retention.prune`` until the cap holds (at
  most PRUNE_PHASE_SECONDS), with the same ingest running in a thread: rows pruned/s, and
  ingest lines/s meanwhile.

``--quick`` is 200,000 rows. With ``--json`` the last line of stdout is one JSON object.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from datetime import UTC, datetime

from sqlalchemy import text, update

from bench.harness import BenchServices, add_json_option, machine_load, note, print_json, table
from stashhog.extensions import db
from stashhog.models import Daemon
from stashhog.observability import retention, search
from stashhog.services.daemon_logs import LogLine, write_log_batch

GENERATE = text(
    "INSERT INTO daemon_logs (daemon_id, level, message, created_at, generation, seq) "
    "SELECT CAST(:d AS uuid), CASE WHEN g % 50 = 0 THEN 'ERROR' ELSE 'INFO' END, "
    "'iteration ' || g || ' worker tick' || CASE WHEN g % 1000 = 0 THEN ' quota exceeded' "
    "ELSE '' END || CASE WHEN g % 1000000 = 7 THEN ' needle' ELSE '' END, "
    "now() - (:n - g) * interval '1 millisecond', 0, g FROM generate_series(1, :n) AS g"
)
QUERIES = {"common word": "tick", "1 in 1,000": "quota", "phrase": '"quota exceeded"',
           "1 in 1,000,000": "needle", "absent": "nonexistentword"}  # fmt: skip
BATCH = 5000
SEARCH_INGEST_SECONDS = 60
PRUNE_PHASE_SECONDS = 120


def generate(daemon_id, rows: int) -> float:
    began = time.monotonic()
    with db.engine.begin() as conn:
        conn.execute(GENERATE, {"d": str(daemon_id), "n": rows})
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE daemon_logs"))
    return time.monotonic() - began


def search_while_ingesting(app, daemon_id, generation: int, seconds: float) -> dict:
    ingest = Ingest(app, daemon_id, generation)
    ingest.start()
    queries = {**QUERIES, "new lines' word": "ingest"}
    times: dict[str, list[float]] = {label: [] for label in queries}
    began = time.monotonic()
    while time.monotonic() - began < seconds:
        for label, q in queries.items():
            started = time.perf_counter()
            search.search_logs(q, limit=100)
            times[label].append((time.perf_counter() - started) * 1000)
        time.sleep(0.5)
    ingest.stop_at.set()
    ingest.join()
    figures = {f"{label} median/max ms": f"{statistics.median(v):.0f}/{max(v):.0f}"
               for label, v in times.items()}  # fmt: skip
    return {"ingest_lines_per_s": round(ingest.lines / seconds), **figures}


def search_latency(daemon_id) -> dict[str, float]:
    figures = {}
    for label, q in QUERIES.items():
        search.search_logs(q, limit=100)
        times = []
        for _ in range(5):
            began = time.perf_counter()
            search.search_logs(q, limit=100)
            times.append((time.perf_counter() - began) * 1000)
        figures[label] = round(statistics.median(times), 1)
    return figures


class Ingest(threading.Thread):
    """write_log_batch in a loop (a daemon instance's flush), counting lines."""

    def __init__(self, app, daemon_id, generation: int) -> None:
        super().__init__(daemon=True)
        self.app, self.daemon_id, self.generation = app, daemon_id, generation
        self.lines, self.stop_at, self.seq = 0, threading.Event(), 0

    def run(self) -> None:
        with self.app.app_context():
            while not self.stop_at.is_set():
                now = datetime.now(UTC)
                batch = [LogLine(self.seq + i, "INFO", f"ingest line {self.seq + i}", now)
                         for i in range(BATCH)]  # fmt: skip
                write_log_batch(self.daemon_id, self.generation, batch)
                self.seq += BATCH
                self.lines += BATCH


def ingest_for(app, daemon_id, generation: int, seconds: float) -> float:
    ingest = Ingest(app, daemon_id, generation)
    ingest.start()
    time.sleep(seconds)
    ingest.stop_at.set()
    ingest.join()
    return ingest.lines / seconds


def prune_while_ingesting(app, daemon_id, generation: int, keep: int) -> dict:
    with db.engine.begin() as conn:
        conn.execute(update(Daemon).where(Daemon.id == daemon_id).values(log_max_lines=keep))
    ingest = Ingest(app, daemon_id, generation + 1)
    ingest.start()
    # Bounded: an ingest faster than the prune (seen at 10M rows) would never let it finish.
    began, pruned = time.monotonic(), 0
    while time.monotonic() - began < PRUNE_PHASE_SECONDS:
        counts = retention.prune(budget=5.0)
        pruned += counts["daemon_logs"]
        if counts["daemon_logs"] < app.config["PRUNE_BATCH"]:
            break
    elapsed = time.monotonic() - began
    ingest.stop_at.set()
    ingest.join()
    return {"pruned": pruned, "prune_seconds": round(elapsed, 1),
            "prune_rows_per_s": round(pruned / elapsed), "ingest_lines_per_s_while_pruning":
            round(ingest.lines / elapsed)}  # fmt: skip


def set_generation(daemon_id, generation: int) -> None:
    with db.engine.begin() as conn:
        conn.execute(update(Daemon).where(Daemon.id == daemon_id).values(generation=generation))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--quick", action="store_true", help="200,000 rows")
    add_json_option(parser)
    args = parser.parse_args()
    rows = 200_000 if args.quick else args.rows
    note(machine_load())
    with BenchServices() as bench, bench.app.app_context():
        daemon_id = bench.create_daemon("TEST_DAEMON", {})
        set_generation(daemon_id, 1)
        note(f"generating {rows:,} rows")
        generated_s = generate(daemon_id, rows)
        latency = search_latency(daemon_id)
        alone = ingest_for(bench.app, daemon_id, 1, 5.0)
        set_generation(daemon_id, 2)  # each phase writes as a new instance: seq from 1 again
        busy = search_while_ingesting(bench.app, daemon_id, 2, 10.0 if args.quick else
                                      SEARCH_INGEST_SECONDS)  # fmt: skip
        set_generation(daemon_id, 3)
        prune = prune_while_ingesting(bench.app, daemon_id, 2, rows // 2)
    print(table(["search (newest 100)", "median ms"], list(latency.items())))
    print(table(["search while ingesting", "value"], list(busy.items())))
    print(table(["figure", "value"], [["rows", f"{rows:,}"], ["generate s", f"{generated_s:.1f}"],
                                      ["ingest alone lines/s", f"{alone:,.0f}"],
                                      *[[k, f"{v:,}"] for k, v in prune.items()]]))  # fmt: skip
    if args.json:
        print_json("observability", {"rows": rows, "search_ms": latency,
                                     "ingest_lines_per_s": round(alone), **prune,
                                     "search_while_ingesting": busy})  # fmt: skip


if __name__ == "__main__":
    main()
