"""Log lines persisted and published per second from one daemon, against the per-line baseline.

    .venv/bin/python -m bench.log_throughput [--lines 500000] [--seconds 5]
                        [--rates 10000,50000,100000,150000] [--baseline-seconds 5]
                        [--stop-trials 3] [--stop-rate 100000] [--json]

1. Burst: a TEST_BURST daemon emits ``--lines`` lines in one go on a real prefork ``daemons``
   worker whose log buffer is raised to hold them all (``STASHHOG_LOG_BUFFER_LINES``), so this
   measures the raw write path. Throughput is measured from the first line's ``created_at``
   (stamped in ``log()``) to the moment the last line is visible in ``daemon_logs`` (polled
   every 2 ms on its own connection) and to the moment a subscriber thread has received it on
   the daemon's ``daemon_log`` pub/sub channel.
2. Steady rate, on a second worker with the default (bounded) buffer: a TEST_RATE daemon logs
   at each of ``--rates`` lines/s for ``--seconds``; reported: the rate achieved, lines
   persisted, published and dropped (persisted + dropped = emitted), the pool child's RSS
   before and at its peak, the lag of the newest stored line, and the live latency of each
   published chunk (receipt time minus ``created_at`` of its first line).
3. Baseline, in this process on the same table: the original StashHog pattern, one ORM session
   + INSERT + commit + publish per line, for ``--baseline-seconds``.
4. Stop while logging: ``--stop-trials`` TEST_RATE daemons at ``--stop-rate`` lines/s are
   stopped 1 s in; reported: how long ``stop_daemon`` took to reach STOPPED (the target is
   the stop timeout + 1 s), the lines left unwritten (from the last line) and whether that
   last line was persisted.

Batch sizes are read back from PostgreSQL: rows that share an ``xmin`` were inserted by one
transaction, i.e. one flush. With ``--json`` the last line of stdout is one JSON object with
every figure. Target: >= 100,000 lines/s persisted and published.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import psutil
import redis
from sqlalchemy.orm import Session

from bench.harness import (
    SUMMARY_HEADERS,
    BenchServices,
    backend_pids,
    cpu_seconds,
    machine_load,
    note,
    percentile,
    poll,
    summary_row,
    table,
)
from stashhog.events import EventType, event_channel, publish
from stashhog.extensions import db
from stashhog.models import DaemonLog
from stashhog.serializers import iso
from stashhog.services.daemon_control import start_daemon, stop_daemon

LAST_SQL = (
    "SELECT seq, created_at FROM daemon_logs WHERE daemon_id = %s AND generation = %s "
    "ORDER BY id DESC LIMIT 1"
)
STATS_SQL = (
    "SELECT count(*), count(DISTINCT seq), min(created_at), max(created_at) FROM daemon_logs "
    "WHERE daemon_id = %s AND generation = %s AND message LIKE %s"
)
STOPPED_SQL = (
    "SELECT count(*) FILTER (WHERE message LIKE 'rate line %%'), "
    "(array_agg(message ORDER BY id DESC))[1] FROM daemon_logs WHERE daemon_id = %s"
)
# Drop warnings are few and on the (daemon_id, level, id) index: cheap to poll.
WARNINGS_SQL = (
    "SELECT count(*), coalesce(sum(split_part(message, ' ', 1)::bigint), 0) FROM daemon_logs "
    "WHERE daemon_id = %s AND generation = %s AND level = 'WARNING' "
    "AND message LIKE '%% lines dropped: %%'"
)
ROW_SQL = "SELECT status_line, log_lines_dropped FROM daemons WHERE id = %s"
UNWRITTEN = re.compile(r"; ([0-9]+) log lines not written within the stop timeout$")
MB = 1024 * 1024
BATCH_SQL = (
    "SELECT count(*) FROM daemon_logs WHERE daemon_id = %s AND generation = %s "
    "AND message LIKE %s GROUP BY xmin::text ORDER BY min(id)"
)


class Subscriber:
    """Counts lines on a daemon's ``daemon_log`` channel, in a thread of its own."""

    def __init__(self, redis_url: str, channel: str, prefix: str = "") -> None:
        self.prefix = prefix  # only lines whose message starts with it are counted
        self.client = redis.Redis.from_url(redis_url)
        self.pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        self.pubsub.subscribe(channel)
        self.lines = self.messages = 0
        self.first = self.last = 0.0
        self.latencies: list[float] = []  # ms, first line of each message
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                message = self.pubsub.get_message(timeout=0.05)
                if message is not None:
                    self._count(time.time(), json.loads(message["data"])["lines"])
        except redis.RedisError as exc:
            self.error = repr(exc)

    def _count(self, received: float, lines: list[dict]) -> None:
        counted = sum(1 for line in lines if line["message"].startswith(self.prefix))
        if not counted:
            return  # e.g. the "started"/"stopped" lines around the measured ones
        self.first = self.first or received
        self.last = received
        self.messages += 1
        self.lines += counted
        created = datetime.fromisoformat(lines[0]["created_at"]).timestamp()
        self.latencies.append((received - created) * 1000)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.pubsub.close()
        self.client.close()


@dataclass
class Result:
    label: str
    lines: int
    emitted_from: float = 0.0
    emitted_to: float = 0.0
    persisted_at: float = 0.0
    rows: int = 0
    distinct: int = 0
    published: int = 0
    published_at: float = 0.0
    batches: list[int] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    dropped: int = 0
    rss_before: int = 0
    rss_peak: int = 0
    lags: list[float] = field(default_factory=list)  # s, newest stored line vs now
    worker_cpu: float = 0.0
    postgres_cpu: float = 0.0
    notes: list[str] = field(default_factory=list)

    def rate(self, until: float, count: int | None = None) -> float:
        """Lines per second from the first line's ``created_at`` to ``until``."""
        count = self.lines if count is None else count
        return count / (until - self.emitted_from) if until > self.emitted_from else 0.0


class Watch:
    """Follows one instance until every line it emitted is stored or counted as dropped:
    the last stored seq every poll; the row, the drop warnings, the pool child's RSS and the
    newest line's age every ``SAMPLE_SECONDS``."""

    SAMPLE_SECONDS = 0.025

    def __init__(self, cursor, daemon_id, generation: int, pid: int, result: Result) -> None:
        self.cursor, self.key = cursor, (str(daemon_id), generation)
        self.daemon_id, self.result = str(daemon_id), result
        self.child = psutil.Process(pid)
        self.emitted = False
        self.final_seq: int | None = None  # seq of the last line the pipeline will write
        self.next_sample = 0.0

    def done(self) -> bool:
        self.cursor.execute(LAST_SQL, self.key)
        row = self.cursor.fetchone()
        if time.monotonic() >= self.next_sample:
            self.next_sample = time.monotonic() + self.SAMPLE_SECONDS
            self._sample(row[1] if row else None)
        return row is not None and self.final_seq is not None and row[0] >= self.final_seq

    def _sample(self, newest: datetime | None) -> None:
        self.result.rss_peak = max(self.result.rss_peak, self.child.memory_info().rss)
        if not self.emitted and newest is not None:
            self.result.lags.append(time.time() - newest.timestamp())
        self.cursor.execute(ROW_SQL, (self.daemon_id,))
        status_line, dropped = self.cursor.fetchone()
        # The daemon says "emitted N lines" after its last line: no line is dropped after it.
        self.emitted = self.emitted or "emitted" in (status_line or "")
        if self.emitted and self.final_seq is None:
            self.cursor.execute(WARNINGS_SQL, self.key)
            warnings, reported = self.cursor.fetchone()
            if reported == dropped:  # the last drop warning is in too
                self.result.dropped = dropped
                # "started on generation N", the lines kept, and the warnings, one seq each.
                self.final_seq = 1 + self.result.lines - dropped + warnings


def run_daemon_case(bench: BenchServices, label, type_, config, lines, match, timeout) -> Result:
    """Start one daemon, wait until each of its ``lines`` lines is in the database (and on
    the channel) or counted as dropped, stop it, and read back counts and batches."""
    daemon_id = bench.create_daemon(type_, config)
    with bench.app.app_context():
        channel = event_channel(EventType.DAEMON_LOG, daemon_id)
        subscriber = Subscriber(bench.redis_url, channel, match.rstrip("%"))
    result = Result(label, lines)
    conn = bench.pg_connect()
    cursor = conn.cursor()
    try:
        children = {child.pid: child for worker in bench.workers for child in worker.children()}
        rss_before = {pid: child.memory_info().rss for pid, child in children.items()}
        cpu_before = cpu_seconds(list(children) + backend_pids(conn))
        with bench.app.app_context():
            daemon = start_daemon(daemon_id, wait=10)["daemon"]
        result.rss_before = rss_before.get(daemon["worker_pid"], 0)
        watch = Watch(cursor, daemon_id, daemon["generation"], daemon["worker_pid"], result)
        if not poll(watch.done, timeout, 0.002):
            result.notes.append(f"lines neither persisted nor dropped within {timeout} s")
        result.persisted_at = time.time()
        poll(lambda: subscriber.lines >= lines - result.dropped, 10.0, 0.002)
        generation = daemon["generation"]
        result.worker_cpu, result.postgres_cpu = cpu_used(
            cpu_before, daemon["worker_pid"], backend_pids(conn)
        )
        with bench.app.app_context():
            stop_daemon(daemon_id, wait=10)
        cursor.execute(STATS_SQL, (str(daemon_id), generation, match))
        result.rows, result.distinct, first, last = cursor.fetchone()
        result.emitted_from, result.emitted_to = first.timestamp(), last.timestamp()
        cursor.execute(BATCH_SQL, (str(daemon_id), generation, match))
        result.batches = [count for (count,) in cursor.fetchall()]
    finally:
        subscriber.close()
        conn.close()
    result.published, result.published_at = subscriber.lines, subscriber.last
    result.latencies = subscriber.latencies
    if subscriber.error:
        result.notes.append(f"subscriber: {subscriber.error}")
    return result


def cpu_used(before: dict[int, float], worker_pid: int, backends: list[int]):
    """CPU seconds since ``before`` of the pool child that ran the daemon, and of all the
    database's backends (a backend that appeared since counts from zero)."""
    after = cpu_seconds([worker_pid, *backends])
    worker = after.get(worker_pid, 0.0) - before.get(worker_pid, 0.0)
    postgres = sum(after[pid] - before.get(pid, 0.0) for pid in backends if pid in after)
    return worker, postgres


def run_baseline(bench: BenchServices, seconds: float) -> Result:
    """The original pattern: per line, a new session, INSERT, commit, then publish."""
    daemon_id = bench.create_daemon("TEST_BURST", {"lines": 0}, name="bench-baseline")
    with bench.app.app_context():
        subscriber = Subscriber(bench.redis_url, event_channel(EventType.DAEMON_LOG, daemon_id))
        result = Result("baseline: session+commit+publish per line", 0)
        conn = bench.pg_connect()
        own = psutil.Process()
        cpu_before = cpu_seconds([own.pid, *backend_pids(conn)])
        began = time.time()
        number = 0
        while time.time() - began < seconds:
            with Session(db.engine, expire_on_commit=False) as session:
                line = DaemonLog(
                    daemon_id=daemon_id,
                    level="INFO",
                    message=f"line {number}",
                    created_at=datetime.now(UTC),
                )
                session.add(line)
                session.commit()
            publish(
                EventType.DAEMON_LOG,
                daemon_id,
                lines=[
                    {
                        "id": line.id,
                        "daemon_id": str(daemon_id),
                        "level": line.level,
                        "message": line.message,
                        "created_at": iso(line.created_at),
                    }
                ],
            )
            number += 1
        result.persisted_at = time.time()
        poll(lambda: subscriber.lines >= number, 5.0, 0.002)
        result.worker_cpu, result.postgres_cpu = cpu_used(cpu_before, own.pid, backend_pids(conn))
        conn.close()
        subscriber.close()
    result.lines = result.rows = result.distinct = number
    result.emitted_from = began
    result.published, result.published_at = subscriber.lines, subscriber.last
    result.latencies = subscriber.latencies
    result.batches = [1] * number
    return result


def run_stop_while_logging(bench: BenchServices, trials: int, rate: float) -> list[dict]:
    """Stop a daemon 1 s into logging at ``rate``: how long the stop takes (against the stop
    timeout + 1 s), how many lines it left unwritten (from its last line), and whether that
    last line ("stopped (...)") was persisted."""
    conn = bench.pg_connect()
    cursor = conn.cursor()
    stops = []
    for trial in range(trials):
        daemon_id = bench.create_daemon("TEST_RATE", {"rate": rate, "seconds": 60.0})
        with bench.app.app_context():
            start_daemon(daemon_id, wait=10)
            time.sleep(1.0)
            began = time.perf_counter()
            daemon = stop_daemon(daemon_id, wait=120)["daemon"]
        elapsed = time.perf_counter() - began
        cursor.execute(STOPPED_SQL, (str(daemon_id),))
        persisted, last_line = cursor.fetchone()
        unwritten = UNWRITTEN.search(last_line or "")
        stops.append(
            {
                "trial": trial + 1,
                "status": daemon["status"],
                "seconds": round(elapsed, 3),
                "lines_persisted": persisted,
                "lines_lost": daemon["log_lines_dropped"],
                "unwritten": int(unwritten.group(1)) if unwritten else 0,
                "last_line_persisted": (last_line or "").startswith("stopped ("),
            }
        )
    conn.close()
    return stops


def print_stops(stops: list[dict], rate: float, stop_timeout: float) -> None:
    print(f"\nstop 1 s into logging at {rate:,.0f} lines/s (stop timeout {stop_timeout:g} s, "
          f"target <= {stop_timeout + 1:g} s)")  # fmt: skip
    headers = ["trial", "status", "stop s", "lines persisted", "lost", "unwritten", "last line"]
    print(table(headers, [list(stop.values()) for stop in stops]))


def print_results(results: list[Result]) -> None:
    headers = (
        "case|lines|emit/s|persisted/s|published/s|rows|published|dropped|drain ms|batches|"
        "batch p50|batch max|worker CPU s|PG CPU s|lines/CPU-s"
    ).split("|")
    rows = []
    for r in results:
        emit_span = r.emitted_to - r.emitted_from
        rows.append(
            [
                r.label,
                r.lines,
                f"{r.lines / emit_span:,.0f}" if emit_span > 0 else "-",
                f"{r.rate(r.persisted_at, r.rows):,.0f}",
                f"{r.rate(r.published_at, r.published):,.0f}",
                r.rows if r.rows == r.distinct else f"{r.rows} ({r.distinct} distinct)",
                r.published,
                r.dropped,
                f"{(r.persisted_at - r.emitted_to) * 1000:.0f}" if r.emitted_to else "-",
                len(r.batches),
                percentile(r.batches, 50) if r.batches else "-",
                max(r.batches) if r.batches else "-",
                f"{r.worker_cpu:.2f}",
                f"{r.postgres_cpu:.2f}",
                f"{r.rows / (r.worker_cpu + r.postgres_cpu):,.0f}",
            ]
        )
    print("\n" + table(headers, rows))
    print("\nbounded buffer: the pool child's RSS, and the newest stored line's age while logging")
    memory_headers = ["case", "RSS before MB", "RSS peak MB", "lag p50 s", "lag max s"]
    print(table(memory_headers, [memory_row(r) for r in results if r.rss_peak]))
    print("\nlive latency: first line of each published message, created_at -> received")
    print(table(SUMMARY_HEADERS, [summary_row(r.label, r.latencies) for r in results]))
    for r in results:
        for text in r.notes:
            print(f"NOTE {r.label}: {text}")


def memory_row(r: Result) -> list[str]:
    lags = [f"{percentile(r.lags, 50):.2f}", f"{max(r.lags):.2f}"] if r.lags else ["-", "-"]
    return [r.label, f"{r.rss_before / MB:.0f}", f"{r.rss_peak / MB:.0f}", *lags]


def case_figures(r: Result) -> dict:
    """One case's figures for ``--json``."""
    return {
        "case": r.label,
        "emitted": r.lines,
        "persisted": r.rows,
        "published": r.published,
        "dropped": r.dropped,
        "persisted_per_s": round(r.rate(r.persisted_at, r.rows)),
        "published_per_s": round(r.rate(r.published_at, r.published)),
        "rss_before_mb": round(r.rss_before / MB, 1),
        "rss_peak_mb": round(r.rss_peak / MB, 1),
        "lag_max_s": round(max(r.lags), 3) if r.lags else None,
        "live_latency_p99_ms": round(percentile(r.latencies, 99), 1) if r.latencies else None,
        "batches": len(r.batches),
    }


def summary(results: list[Result], stops: list[dict], stop_timeout: float) -> dict:
    """The ``--json`` object: every case, every stop, and the headline figures of the
    fastest steady rate (the overloaded one)."""
    cases = [case_figures(r) for r in results]
    steady = [c for r, c in zip(results, cases, strict=True) if r.label.startswith("steady")]
    top = steady[-1] if steady else (cases[0] if cases else {})
    return {
        "bench": "log_throughput",
        "load_average": [round(value, 2) for value in os.getloadavg()],
        **{key: top.get(key) for key in ("persisted_per_s", "emitted", "persisted", "dropped")},
        "rss_peak_mb": max((c["rss_peak_mb"] for c in cases), default=None),
        "stop_timeout": stop_timeout,
        "stop_seconds": [stop["seconds"] for stop in stops],
        "stop_unwritten": [stop["unwritten"] for stop in stops],
        "cases": cases,
        "stops": stops,
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=500_000, help="burst size")
    parser.add_argument(
        "--rates", default="10000,50000,100000,150000", help="steady rates, lines/s"
    )
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds per steady rate")
    parser.add_argument("--baseline-seconds", type=float, default=5.0)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--stop-trials", type=int, default=3, help="stops while logging")
    parser.add_argument("--stop-rate", type=float, default=100_000.0)
    parser.add_argument(
        "--json", action="store_true", help="end with one line: a JSON object of the figures"
    )
    return parser.parse_args()


def run_burst(bench: BenchServices, args: argparse.Namespace) -> Result:
    """The raw write path: on a worker of its own whose buffer holds the whole burst."""
    roomy = {
        "STASHHOG_LOG_BUFFER_LINES": str(args.lines + 1000),
        "STASHHOG_LOG_BUFFER_BYTES": str((args.lines + 1000) * 1024),
    }
    worker = bench.start_daemons_worker(2, roomy)
    note(f"burst of {args.lines} lines, buffer raised to hold it")
    try:
        return run_daemon_case(
            bench,
            f"burst {args.lines:,} (TEST_BURST)",
            "TEST_BURST",
            {"lines": args.lines},
            args.lines,
            "line %",
            args.timeout,
        )
    finally:
        bench.stop_worker(worker)


def main() -> None:
    args = parse_args()
    results, stops = [], []
    with BenchServices() as bench:
        note(machine_load())
        if args.lines:
            results.append(run_burst(bench, args))
        bench.start_daemons_worker(2)  # the default, bounded buffer from here on
        for rate in (float(r) for r in args.rates.split(",") if r):
            note(f"steady {rate:,.0f} lines/s for {args.seconds} s")
            lines = int(rate * args.seconds)
            config = {"rate": rate, "seconds": args.seconds}
            results.append(
                run_daemon_case(
                    bench,
                    f"steady {rate:,.0f}/s x {args.seconds:g} s (TEST_RATE)",
                    "TEST_RATE",
                    config,
                    lines,
                    "rate line %",
                    args.timeout,
                )
            )
        if args.baseline_seconds:
            note(f"baseline for {args.baseline_seconds} s")
            results.append(run_baseline(bench, args.baseline_seconds))
        print_results(results)
        if args.stop_trials:
            note(f"{args.stop_trials} stops while logging")
            stops = run_stop_while_logging(bench, args.stop_trials, args.stop_rate)
            print_stops(stops, args.stop_rate, bench.stop_timeout)
        note(machine_load())
    if args.json:
        print(json.dumps(summary(results, stops, bench.stop_timeout)))


if __name__ == "__main__":
    main()
