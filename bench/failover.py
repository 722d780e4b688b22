"""Failover: a daemons worker holding N daemons is killed with kill -9; how long until each of
them runs again, on a new generation with a heartbeat, on the worker that is left.

    .venv/bin/python -m bench.failover [--mode prefork|threads] [--daemons 100] [--quick] [--json]

Beside the Procfile's ``supervisor`` worker and ``beat`` (the reconciler re-dispatches a daemon
whose lease expired: LEASE_TTL, RECONCILE_INTERVAL), worker A (``-P <mode> -c N``) gets N quiet
Test Daemons, started through ``start_daemon``; once all are RUNNING there, worker B with as
many free slots starts (so that A, not B, took them). Then SIGKILL to every pid of A's tree
(main process and pool children, by pid, at once). Every 50 ms the bench reads the rows: a
daemon is back when it is RUNNING with a heartbeat on a generation newer than the one it had
at the kill. Recovery is that moment minus the kill, per daemon: p50, p99, max, and how many
never came back within ``--timeout``. Goal: all back, p99 <= 10 s. ``--quick``: 10 daemons.
"""

from __future__ import annotations

import argparse
import time

from bench import fleet
from bench.harness import (
    BenchServices,
    add_json_option,
    note,
    summary_figures,
    table,
)
from stashhog.models import DaemonType

CONFIG = {"log_interval": 3600, "job_interval": 86400, "heartbeat_interval": 10}
GOAL_P99_S = 10.0
ROWS_SQL = (
    "SELECT id, status, generation, last_heartbeat IS NOT NULL, worker_pid FROM daemons "
    "WHERE id = ANY(%s::uuid[])"
)


def generations(cursor, ids: list[str]) -> dict[str, tuple]:
    cursor.execute(ROWS_SQL, (ids,))
    return {str(row[0]): row[1:] for row in cursor.fetchall()}


def watch(cursor, ids: list[str], before: dict, killed_at: float, timeout: float) -> dict:
    """Seconds from the kill until each daemon is RUNNING with a heartbeat on a newer
    generation (absent: never within ``timeout``)."""
    back: dict[str, float] = {}
    while len(back) < len(ids) and time.monotonic() - killed_at < timeout:
        now = time.monotonic()
        for daemon_id, (status, generation, beat, _pid) in generations(cursor, ids).items():
            newer = generation > before[daemon_id][1]
            if daemon_id not in back and status == "RUNNING" and beat and newer:
                back[daemon_id] = now - killed_at
        time.sleep(0.05)
    return back


def run(bench: BenchServices, args) -> dict:
    bench.start_supervision()
    worker_a = bench.start_daemons_worker(args.daemons, pool=args.mode)
    ids = [str(i) for i in bench.create_daemons(DaemonType.TEST_DAEMON, CONFIG, args.daemons)]
    refused = fleet.start_all(bench, ids)
    conn = bench.pg_connect()
    cursor = conn.cursor()
    waited, up = fleet.wait_running(cursor, ids, timeout=60 + args.daemons * 0.1)
    a_pids = {worker_a.pid, *(child.pid for child in worker_a.children())}
    before = generations(cursor, ids)
    on_a = sum(1 for row in before.values() if row[0] == "RUNNING" and row[3] in a_pids)
    worker_b = bench.start_daemons_worker(args.daemons, pool=args.mode)
    note(f"{on_a} of {len(ids)} RUNNING on worker A; worker B pid {worker_b.pid} ready")
    killed_at = time.monotonic()
    worker_a.kill()  # kill -9 of the main process and every pool child, by pid
    bench.workers.remove(worker_a)
    worker_a.log.close()
    note(f"killed worker A's {len(a_pids)} pids")
    back = watch(cursor, [i for i in ids if before[i][0] == "RUNNING"], before, killed_at,
                 args.timeout)  # fmt: skip
    after = fleet.counts(cursor, ids)
    why = fleet.reasons(cursor, ids)
    b_pids = {worker_b.pid, *(child.pid for child in worker_b.children())}
    on_b = sum(1 for row in generations(cursor, ids).values() if row[3] in b_pids)
    conn.close()
    seconds = sorted(back.values())
    recovery = summary_figures([s * 1000 for s in seconds])
    return {
        "mode": args.mode,
        "daemons": args.daemons,
        "refused": refused,
        "bring_up_s": None if waited is None else round(waited, 2),
        "counts_up": up,
        "running_on_a": on_a,
        "recovered": len(back),
        "not_recovered": on_a - len(back),
        "running_on_b": on_b,
        "recovery": recovery,
        "recovery_p50_s": _seconds(recovery["p50_ms"]),
        "recovery_p99_s": _seconds(recovery["p99_ms"]),
        "recovery_max_s": _seconds(recovery["max_ms"]),
        "goal_p99_s": GOAL_P99_S,
        "counts_after": after,
        "reasons": why,
        "timeout_s": args.timeout,
    }


def _seconds(ms: float | None) -> float | None:
    return None if ms is None else round(ms / 1000, 2)


def print_report(figures: dict) -> None:
    def s(value) -> str:
        return "-" if value is None else f"{value:.2f}"

    rows = [
        ["daemons RUNNING on A at the kill", f"{figures['running_on_a']} of {figures['daemons']}"],
        ["back: RUNNING + heartbeat, new generation", str(figures["recovered"])],
        ["never back within the timeout", str(figures["not_recovered"])],
        ["recovery p50 / p99 / max s", " / ".join(
            s(figures[f"recovery_{p}_s"]) for p in ("p50", "p99", "max"))],
        ["states after", str(figures["counts_after"])],
        ["why (last_error or status line)", "; ".join(figures["reasons"]) or "-"],
    ]  # fmt: skip
    print(f"\nfailover, -P {figures['mode']}, kill -9 of a worker holding {figures['daemons']}")
    print(table(["measure", "value"], rows))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=["prefork", "threads"], default="prefork")
    parser.add_argument("--daemons", type=int, default=100)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait after kill")
    parser.add_argument("--quick", action="store_true", help="10 daemons")
    add_json_option(parser)
    args = parser.parse_args()
    if args.quick:
        args.daemons = 10
    return args


def main() -> None:
    fleet.run_bench("failover", parse_args(), run, print_report)


if __name__ == "__main__":
    main()
