"""Memory per running daemon on a real prefork ``daemons`` worker.

    .venv/bin/python -m bench.memory [--daemons 4] [--concurrency 4] [--settle 5] [--quick]
                                     [--json]

Starts ``celery worker -Q daemons -P prefork -c N --disable-prefetch`` and reads, with psutil's
``memory_full_info()``, the USS (memory only this process holds), PSS (USS plus its share of
pages shared with the other processes) and RSS of the worker's main process and each pool
child in three phases: no daemon running; ``--daemons`` TEST_DAEMON daemons running (each in a
pool child, logging every 0.5 s with a heartbeat every second) for ``--settle`` seconds; and
after they have all stopped. The per-daemon cost is the growth of a child's USS when a daemon
runs in it; the per-slot cost is what an idle pool child holds whether or not a daemon runs.

The same is then measured on a second worker that calls ``gc.freeze()`` before the pool forks
(``bench/gc_freeze.py``, loaded through ``DAEMON_MODULES``), unless ``--no-gc-freeze``.
With ``--json`` the last line of stdout is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import statistics
import time

import psutil

from bench.harness import (
    DAEMON_MODULES,
    BenchServices,
    add_json_option,
    machine_load,
    note,
    print_json,
    table,
)
from stashhog.models import DaemonType
from stashhog.services.daemon_control import start_daemon, stop_daemon

CONFIG = {"log_interval": 0.5, "heartbeat_interval": 1, "job_interval": 86400}
MB = 1024 * 1024
# Figure (its name in --json, MB) -> its label in the summary table.
FIGURES = {
    "idle_child_uss_mean": "idle pool child USS (per slot, paid at -c), mean",
    "idle_child_uss_max": "idle pool child USS, max",
    "main_uss_idle": "main process USS, no daemon",
    "child_uss_growth_mean": "child USS growth with a daemon running, mean",
    "child_uss_growth_max": "child USS growth with a daemon running, max",
    "running_child_uss_mean": "child USS of a running daemon (slot + daemon), mean",
    "running_child_pss_mean": "child PSS of a running daemon, mean",
    "worker_uss_idle": "worker total USS, no daemon",
    "worker_uss_running": "worker total USS, {daemons} daemons running",
    "worker_uss_per_daemon": "worker total USS growth per running daemon",
    "child_uss_kept_after_stop_mean": "child USS kept after its daemon stopped, mean",
}


def measure(worker) -> dict[int, tuple[str, float, float, float]]:
    """pid -> (role, USS, PSS, RSS) in MB for the main process and each pool child."""
    processes = [("main", psutil.Process(worker.pid))]
    processes += [("pool child", child) for child in worker.children()]
    sizes = {}
    for role, process in processes:
        info = process.memory_full_info()
        sizes[process.pid] = (role, info.uss / MB, info.pss / MB, info.rss / MB)
    return sizes


def print_phase(title: str, sizes: dict, running: dict[int, str]) -> None:
    rows = [
        [pid, role, running.get(pid, "-"), f"{uss:.1f}", f"{pss:.1f}", f"{rss:.1f}"]
        for pid, (role, uss, pss, rss) in sizes.items()
    ]
    total = [sum(size[i] for size in sizes.values()) for i in (1, 2, 3)]
    rows.append(["total", "", "", *(f"{value:.1f}" for value in total)])
    print(f"\n{title}")
    print(table(["pid", "role", "daemon", "USS MB", "PSS MB", "RSS MB"], rows))


def children_uss(sizes: dict, pids) -> list[float]:
    return [sizes[pid][1] for pid in pids if pid in sizes]


def summarise(idle: dict, running: dict, stopped: dict, busy: set[int], count: int) -> dict:
    children = [pid for pid, size in idle.items() if size[0] == "pool child"]
    growth = [running[pid][1] - idle[pid][1] for pid in busy if pid in idle]
    kept = [stopped[pid][1] - idle[pid][1] for pid in busy if pid in idle and pid in stopped]
    total = [sum(size[1] for size in phase.values()) for phase in (idle, running, stopped)]
    return {
        "idle_child_uss_mean": statistics.mean(children_uss(idle, children)),
        "idle_child_uss_max": max(children_uss(idle, children)),
        "main_uss_idle": next(s[1] for s in idle.values() if s[0] == "main"),
        "child_uss_growth_mean": statistics.mean(growth),
        "child_uss_growth_max": max(growth),
        "running_child_uss_mean": statistics.mean(children_uss(running, busy)),
        "running_child_pss_mean": statistics.mean(
            running[pid][2] for pid in busy if pid in running
        ),
        "worker_uss_idle": total[0],
        "worker_uss_running": total[1],
        "worker_uss_per_daemon": (total[1] - total[0]) / count,
        "child_uss_kept_after_stop_mean": statistics.mean(kept),
    }


def run_variant(bench: BenchServices, label: str, env: dict, args) -> dict:
    print(f"\n=== {label}")
    worker = bench.start_daemons_worker(max(args.concurrency, args.daemons), env)
    time.sleep(args.settle)
    idle = measure(worker)
    print_phase(f"phase 1: no daemon running (-c {args.concurrency})", idle, {})
    ids = [bench.create_daemon(DaemonType.TEST_DAEMON, CONFIG) for _ in range(args.daemons)]
    running_in: dict[int, str] = {}
    with bench.app.app_context():
        for number, daemon_id in enumerate(ids):
            daemon = start_daemon(daemon_id, wait=10)["daemon"]
            running_in[daemon["worker_pid"]] = f"daemon {number} ({daemon['status']})"
    time.sleep(args.settle)
    running = measure(worker)
    print_phase(
        f"phase 2: {args.daemons} daemons running for {args.settle:g} s", running, running_in
    )
    with bench.app.app_context():
        for daemon_id in ids:
            stop_daemon(daemon_id, wait=10)
    time.sleep(args.settle)
    stopped = measure(worker)
    print_phase("phase 3: all daemons stopped", stopped, {})
    bench.stop_worker(worker)  # the next variant's worker must be the only one on the queue
    return summarise(idle, running, stopped, set(running_in), args.daemons)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--daemons", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=4, help="worker -c (>= --daemons)")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds before measuring")
    parser.add_argument(
        "--no-gc-freeze",
        action="store_true",
        help="skip the second worker with gc.freeze() before fork",
    )
    parser.add_argument("--quick", action="store_true", help="1 daemon, -c 1, 0.5 s, one worker")
    add_json_option(parser)
    args = parser.parse_args()
    if args.quick:
        args.daemons, args.concurrency, args.settle, args.no_gc_freeze = 1, 1, 0.5, True
    # Variant (its name in --json) -> its label and the worker's extra environment.
    variants = {"as_shipped": ("as shipped", {})}
    if not args.no_gc_freeze:
        variants["gc_freeze"] = (
            "gc.freeze() at worker_init",
            {"STASHHOG_DAEMON_MODULES": f"{DAEMON_MODULES},bench.gc_freeze"},
        )
    with BenchServices() as bench:
        note(machine_load())
        results = {
            name: run_variant(bench, label, env, args) for name, (label, env) in variants.items()
        }
        note(machine_load())
    print(f"\nsummary (MB), -c {args.concurrency}, {args.daemons} TEST_DAEMON daemons")
    rows = [
        [label.format(daemons=args.daemons), *(f"{r[name]:.1f}" for r in results.values())]
        for name, label in FIGURES.items()
    ]
    print(table(["measure", *(label for label, _env in variants.values())], rows))
    if args.json:
        print_json("memory", summary(results, args))


def summary(results: dict[str, dict[str, float]], args) -> dict:
    """The ``--json`` object (MB): the headline figures of the shipped worker, then every
    figure of each variant."""
    shipped = results["as_shipped"]
    return {
        "concurrency": max(args.concurrency, args.daemons),
        "daemons": args.daemons,
        "idle_slot_uss_mb": round(shipped["idle_child_uss_mean"], 1),
        "per_daemon_uss_mb": round(shipped["worker_uss_per_daemon"], 1),
        "worker_uss_running_mb": round(shipped["worker_uss_running"], 1),
        "variants": {
            name: {f"{key}_mb": round(value, 2) for key, value in figures.items()}
            for name, figures in results.items()
        },
    }


if __name__ == "__main__":
    main()
