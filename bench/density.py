"""How many daemons one daemons worker holds on this box: memory per daemon, heartbeat
lateness, API latency and PostgreSQL connections with N quiet Test Daemons running.

    .venv/bin/python -m bench.density [--mode prefork|threads] [--daemons N] [--seconds 20]
                                      [--heartbeat-interval 5] [--api-rate 10] [--quick] [--json]

One ``daemons`` worker, ``celery ... worker -P <mode> -c N --disable-prefetch`` (N pool
children in prefork, N threads in threads mode; defaults 200 and 1,000 daemons), beside the
Procfile's ``supervisor`` worker and ``beat`` (the reconciler runs as in production) and the
web process. N Test Daemons (quiet: no log line but start and stop, no job, a heartbeat every
``--heartbeat-interval`` seconds) are started one after the other through ``start_daemon``;
"bring-up" is the time from the first call until all N are RUNNING with a heartbeat. If they
never are (STARTING for good, ERROR, refused), the bench says how many are in which state
and why (``last_error``), measures what does run, and goes on: it never waits more than
STALL_SECONDS without progress.

Then for ``--seconds``: every 100 ms one read of every RUNNING row's ``last_heartbeat`` (and
PostgreSQL's ``now()``). A heartbeat's lateness is the gap between two successive stamps of a
daemon minus its interval (the instance's own clock); "visible" lateness is the moment the
bench saw it minus (previous stamp + interval) (±100 ms: the poll). A daemon is "overdue" when
its heartbeat was ever older than the health check's deadline (2 × interval + 0.5 s), i.e. the
panel would have shown it unhealthy; "restarted" counts those whose generation changed while
measuring, "re-dispatched" those already past their first at its start (bring-up). Meanwhile
``GET /api/daemons`` at ``--api-rate`` per second (open loop, a new connection each, an
operator's token), and ``pg_stat_activity`` every second. Memory: psutil USS of the worker's
process tree (main process and pool children), before the daemons started and while they run.
``--quick``: 20 daemons, 6 s, a heartbeat every second, no supervisor worker or beat.
"""

from __future__ import annotations

import argparse
import threading
import time

from bench import fleet
from bench.harness import (
    BenchServices,
    add_json_option,
    note,
    summary_figures,
    table,
)
from bench.processes import tree_uss
from bench.viewers import api_once
from stashhog.models import DaemonType

DEFAULT_DAEMONS = {"prefork": 200, "threads": 1000}
GOAL_DAEMONS = DEFAULT_DAEMONS  # the goal per mode
POLL_SECONDS = 0.1
MB = 2**20
BEATS_SQL = (
    "SELECT id, last_heartbeat, now() FROM daemons "
    "WHERE id = ANY(%s::uuid[]) AND status = 'RUNNING' AND last_heartbeat IS NOT NULL"
)
GENERATIONS_SQL = "SELECT id, generation FROM daemons WHERE id = ANY(%s::uuid[])"
CONNECTIONS_SQL = (
    "SELECT count(*), count(*) FILTER (WHERE state = 'active'), "
    "count(*) FILTER (WHERE datname = current_database()) FROM pg_stat_activity "
    "WHERE backend_type = 'client backend'"
)


class Heartbeats:
    """Every RUNNING row's heartbeat, read every POLL_SECONDS."""

    def __init__(self, cursor, ids: list[str], interval: float) -> None:
        self.cursor, self.ids, self.interval = cursor, ids, interval
        self.deadline = 2 * interval + 0.5  # stashhog.services.daemon_health
        self.last: dict = {}
        self.gap_late_ms: list[float] = []
        self.seen_late_ms: list[float] = []
        self.overdue: set = set()
        self.oldest_s = 0.0

    def read(self) -> None:
        self.cursor.execute(BEATS_SQL, (self.ids,))
        for daemon_id, beat, now in self.cursor.fetchall():
            age = (now - beat).total_seconds()
            self.oldest_s = max(self.oldest_s, age)
            if age > self.deadline:
                self.overdue.add(daemon_id)
            previous = self.last.get(daemon_id)
            if previous is not None and beat != previous:
                gap = (beat - previous).total_seconds()
                self.gap_late_ms.append((gap - self.interval) * 1000)
                self.seen_late_ms.append(((now - previous).total_seconds() - self.interval) * 1000)
            self.last[daemon_id] = beat


class Load:
    """``GET /api/daemons`` at a steady rate, in a thread, until stopped."""

    def __init__(self, web, rate: float) -> None:
        self.web, self.rate = web, rate
        self.took_ms: list[float] = []
        self.errors: dict[int, int] = {}
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        began, number = time.monotonic(), 0
        while not self.done.is_set():
            status, ms = api_once(self.web)
            if status == 200:
                self.took_ms.append(ms)
            else:
                self.errors[status] = self.errors.get(status, 0) + 1
            number += 1
            self.done.wait(max(0.0, began + number / self.rate - time.monotonic()))

    def __enter__(self) -> Load:
        self.thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.done.set()
        self.thread.join(15)


def measure(bench: BenchServices, web, worker, ids: list[str], args) -> dict:
    conn = bench.pg_connect()
    cursor = conn.cursor()
    beats = Heartbeats(cursor, ids, args.heartbeat_interval)
    cursor.execute(GENERATIONS_SQL, (ids,))
    before = dict(cursor.fetchall())
    connections = []
    with Load(web, args.api_rate) as load:
        began = time.monotonic()
        next_sample = began
        while (now := time.monotonic()) - began < args.seconds:
            beats.read()
            if now >= next_sample:
                cursor.execute(CONNECTIONS_SQL)
                connections.append(cursor.fetchone())
                next_sample += 1.0
            time.sleep(max(0.0, POLL_SECONDS - (time.monotonic() - now)))
    uss, processes = tree_uss(worker.pid)
    cursor.execute(GENERATIONS_SQL, (ids,))
    after = dict(cursor.fetchall())
    # Each was started once (generation 1): a later one at the start of the measure is a
    # re-dispatch during bring-up (a start queued past DISPATCH_TIMEOUT); one that changed
    # while measuring is a restart (the instance stopped itself or vanished).
    redispatched = sum(1 for generation in before.values() if generation > 1)
    restarted = sum(1 for key, generation in after.items() if generation != before.get(key))
    final = fleet.counts(cursor, ids)
    why = fleet.reasons(cursor, ids)
    cursor.execute("SHOW max_connections")
    max_connections = int(cursor.fetchone()[0])
    conn.close()
    return {
        "worker_uss_mb": round(uss / MB, 1),
        "worker_processes": processes,
        "counts_after": final,
        "reasons": why,
        "heartbeats": len(beats.gap_late_ms),
        "heartbeat_lateness": summary_figures(beats.gap_late_ms),
        "heartbeat_visible_lateness": summary_figures(beats.seen_late_ms),
        "heartbeat_lateness_p99_ms": summary_figures(beats.gap_late_ms)["p99_ms"],
        "overdue_daemons": len(beats.overdue),
        "restarted_daemons": restarted,
        "redispatched_at_bring_up": redispatched,
        "oldest_heartbeat_s": round(beats.oldest_s, 2),
        "api": summary_figures(load.took_ms),
        "api_p99_ms": summary_figures(load.took_ms)["p99_ms"],
        "api_errors": load.errors,
        "pg_connections_max": max((row[0] for row in connections), default=None),
        "pg_connections_active_max": max((row[1] for row in connections), default=None),
        "pg_connections_bench_db_max": max((row[2] for row in connections), default=None),
        "max_connections": max_connections,
    }


def run(bench: BenchServices, args) -> dict:
    if not args.no_supervision:
        bench.start_supervision()
    web = bench.start_web()
    worker = bench.start_daemons_worker(args.daemons, pool=args.mode)
    idle_uss, _count = tree_uss(worker.pid)
    config = {"log_interval": 3600, "job_interval": 86400,
              "heartbeat_interval": args.heartbeat_interval}  # fmt: skip
    ids = [str(i) for i in bench.create_daemons(DaemonType.TEST_DAEMON, config, args.daemons)]
    began = time.monotonic()
    refused = fleet.start_all(bench, ids)
    calls_s = time.monotonic() - began
    note(f"{len(ids)} start calls in {calls_s:.1f} s; refused: {refused or 'none'}")
    conn = bench.pg_connect()
    waited, up = fleet.wait_running(conn.cursor(), ids, timeout=60 + args.daemons * 0.1)
    conn.close()
    figures = {
        "mode": args.mode,
        "daemons": args.daemons,
        "goal_daemons": GOAL_DAEMONS[args.mode],
        "heartbeat_interval_s": args.heartbeat_interval,
        "seconds": args.seconds,
        "start_calls_s": round(calls_s, 2),
        "bring_up_s": None if waited is None else round(calls_s + waited, 2),
        "refused": refused,
        "counts_up": up,
        "worker_uss_idle_mb": round(idle_uss / MB, 1),
    }
    figures |= measure(bench, web, worker, ids, args)
    running = figures["counts_after"].get("RUNNING", 0)
    figures["running"] = running
    figures["not_running"] = args.daemons - running
    figures["uss_per_daemon_mb"] = round(figures["worker_uss_mb"] / max(running, 1), 2)
    growth = (figures["worker_uss_mb"] - figures["worker_uss_idle_mb"]) / max(running, 1)
    figures["uss_growth_per_daemon_mb"] = round(growth, 2)
    return figures


def print_report(figures: dict) -> None:
    def ms(summary: dict, p: str) -> str:
        return "-" if summary.get(p) is None else f"{summary[p]:.0f}"

    bring_up = figures["bring_up_s"]
    rows = [
        ["daemons asked / RUNNING", f"{figures['daemons']} / {figures['running']}"],
        ["state of the others", str(figures["counts_after"])],
        ["why (last_error or status line)", "; ".join(figures["reasons"]) or "-"],
        ["bring-up s (all RUNNING)", "never" if bring_up is None else f"{bring_up:.1f}"],
        ["worker USS MB idle / running", f"{figures['worker_uss_idle_mb']} / "
                                         f"{figures['worker_uss_mb']}"],
        ["USS per daemon MB (total / N, growth / N)", f"{figures['uss_per_daemon_mb']} / "
                                                      f"{figures['uss_growth_per_daemon_mb']}"],
        ["heartbeats seen", str(figures["heartbeats"])],
        ["heartbeat lateness p50 / p99 / max ms",
         " / ".join(ms(figures["heartbeat_lateness"], p) for p in ("p50_ms", "p99_ms", "max_ms"))],
        ["visible lateness p50 / p99 ms",
         " / ".join(ms(figures["heartbeat_visible_lateness"], p) for p in ("p50_ms", "p99_ms"))],
        ["daemons overdue / restarted / re-dispatched at bring-up",
         f"{figures['overdue_daemons']} / {figures['restarted_daemons']} / "
         f"{figures['redispatched_at_bring_up']}"],
        ["GET /api/daemons p50 / p99 ms (errors)",
         f"{ms(figures['api'], 'p50_ms')} / {ms(figures['api'], 'p99_ms')} "
         f"({figures['api_errors'] or 'none'})"],
        ["PostgreSQL connections max (bench db) / max_connections",
         f"{figures['pg_connections_max']} ({figures['pg_connections_bench_db_max']}) / "
         f"{figures['max_connections']}"],
    ]  # fmt: skip
    print(f"\ndensity, -P {figures['mode']} -c {figures['daemons']}, {figures['seconds']:g} s")
    print(table(["measure", "value"], rows))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=sorted(DEFAULT_DAEMONS), default="prefork")
    parser.add_argument("--daemons", type=int, help="default: 200 prefork, 1000 threads")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured duration")
    parser.add_argument("--heartbeat-interval", type=float, help="seconds (default 5; quick 1)")
    parser.add_argument("--api-rate", type=float, default=10.0, help="GET /api/daemons per s")
    parser.add_argument("--no-supervision", action="store_true", help="no beat, no supervisor")
    parser.add_argument("--quick", action="store_true", help="20 daemons, 6 s, no supervision")
    add_json_option(parser)
    args = parser.parse_args()
    if args.quick:
        args.daemons, args.seconds = args.daemons or 20, 6.0
        args.heartbeat_interval = args.heartbeat_interval or 1.0
        args.no_supervision = True  # a minute for the whole quick suite
    args.heartbeat_interval = args.heartbeat_interval or 5.0
    args.daemons = args.daemons or DEFAULT_DAEMONS[args.mode]
    return args


def main() -> None:
    fleet.run_bench("density", parse_args(), run, print_report)


if __name__ == "__main__":
    main()
