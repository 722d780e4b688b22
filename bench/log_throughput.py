"""Log lines persisted and published per second from one daemon, against the per-line
baseline and against COPY alone, in one run.

    .venv/bin/python -m bench.log_throughput [--quick] [--lines 500000] [--seconds 5]
                        [--rates 10000,50000,100000,150000] [--baseline-seconds 5]
                        [--stop-trials 3] [--stop-rate 100000] [--json]

1. Burst: a TEST_BURST daemon emits ``--lines`` lines in one go on a real prefork ``daemons``
   worker whose log buffer is raised to hold them all (``STASHHOG_LOG_BUFFER_LINES``), so this
   measures the raw write path. Throughput is measured from the first line's ``created_at``
   (stamped in ``log()``) to the moment the last line is visible in ``daemon_logs`` (polled
   every 2 ms on its own connection) and to the moment a subscriber thread has received it on
   the daemon's ``daemon_log`` pub/sub channel. These are the headline figures.
2. COPY alone: the same number of lines, of the same shape, COPY'd into ``daemon_logs`` in one
   statement with nothing else (``bench.log_baseline``): the ceiling the burst is held to
   (``ratio_to_copy``: the slower of persisted and published over it).
3. Steady rate, on a second worker with the default (bounded) buffer: a TEST_RATE daemon logs
   at each of ``--rates`` lines/s for ``--seconds``; reported: the rate achieved, lines
   persisted, published and dropped (persisted + dropped = emitted), the pool child's RSS
   before and at its peak, the lag of the newest stored line, and the live latency of each
   published chunk (receipt time minus ``created_at`` of its first line).
4. Baseline, in this process on the same table: the original StashHog pattern, one ORM session
   + INSERT + commit + publish per line, for ``--baseline-seconds``.
5. Stop while logging: ``--stop-trials`` TEST_RATE daemons at ``--stop-rate`` lines/s are
   stopped 1 s in; reported: how long ``stop_daemon`` took to reach STOPPED (the target is
   the stop timeout + 1 s), the lines left unwritten (from the last line) and whether that
   last line was persisted.

``--quick`` is a smoke run of every part at small sizes (about 30 s). With ``--json`` the
last line of stdout is one JSON object with every figure. Target: >= 100,000 lines/s
persisted and published, and >= 0.5 x COPY alone.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import time

from bench.harness import (
    SUMMARY_HEADERS,
    BenchServices,
    machine_load,
    note,
    percentile,
    summary_row,
    table,
)
from bench.log_baseline import run_baseline, run_copy_alone
from bench.log_cases import MB, Result, run_daemon_case
from stashhog.services.daemon_control import start_daemon, stop_daemon

STOPPED_SQL = (
    "SELECT count(*) FILTER (WHERE message LIKE 'rate line %%'), "
    "(array_agg(message ORDER BY id DESC))[1] FROM daemon_logs WHERE daemon_id = %s"
)
UNWRITTEN = re.compile(r"; ([0-9]+) log lines not written within the stop timeout$")
# --quick: every part once, small (the sizes the options would otherwise take).
QUICK = {"lines": 50_000, "rates": "20000", "seconds": 1.0, "baseline_seconds": 1.0,
         "stop_trials": 1}  # fmt: skip


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


def print_results(results: list[Result], copy: Result | None) -> None:
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
    if copy is not None:
        cpu = copy.worker_cpu + copy.postgres_cpu
        rows.append([copy.label, copy.lines, "-", f"{copy.rate(copy.persisted_at, copy.rows):,.0f}",
                     "-", copy.rows, "-", "-", "-", 1, copy.lines, copy.lines,
                     f"{copy.worker_cpu:.2f}", f"{copy.postgres_cpu:.2f}",
                     f"{copy.rows / cpu:,.0f}" if cpu else "-"])  # fmt: skip
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


def summary(results: list[Result], copy: Result | None, stops: list[dict], stop_timeout: float):
    """The ``--json`` object: every case, every stop, and the headline figures: the burst
    (the raw write path) against COPY alone of the same lines, and the fastest steady rate."""
    cases = [case_figures(r) for r in results]

    def kind(prefix: str) -> list[dict]:
        return [c for r, c in zip(results, cases, strict=True) if r.label.startswith(prefix)]

    burst = (kind("burst") or [{}])[0]
    steady, baseline = kind("steady"), kind("baseline")
    copy_per_s = round(copy.rate(copy.persisted_at, copy.rows)) if copy else None
    slower = min(burst.get("persisted_per_s") or 0, burst.get("published_per_s") or 0)
    top = steady[-1] if steady else {}
    return {
        "bench": "log_throughput",
        "load_average": [round(value, 2) for value in os.getloadavg()],
        **{key: burst.get(key) for key in ("persisted_per_s", "published_per_s", "emitted")},
        "copy_alone_per_s": copy_per_s,
        "ratio_to_copy": round(slower / copy_per_s, 3) if copy_per_s else None,
        "baseline_per_s": baseline[0]["persisted_per_s"] if baseline else None,
        **{f"steady_{key}": top.get(key) for key in ("persisted_per_s", "dropped")},
        "rss_peak_mb": max((c["rss_peak_mb"] for c in cases), default=None),
        "stop_timeout": stop_timeout,
        "stop_seconds": [stop["seconds"] for stop in stops],
        "stop_unwritten": [stop["unwritten"] for stop in stops],
        "cases": cases,
        "stops": stops,
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="every part once, small (~30 s)")
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
    args = parser.parse_args()
    if args.quick:
        vars(args).update(QUICK)
    return args


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
    results, stops, copy = [], [], None
    with BenchServices() as bench:
        note(machine_load())
        if args.lines:
            results.append(run_burst(bench, args))
            note(f"COPY alone of {args.lines} lines")
            copy = run_copy_alone(bench, args.lines)
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
        print_results(results, copy)
        if args.stop_trials:
            note(f"{args.stop_trials} stops while logging")
            stops = run_stop_while_logging(bench, args.stop_trials, args.stop_rate)
            print_stops(stops, args.stop_rate, bench.stop_timeout)
        note(machine_load())
    if args.json:
        print(json.dumps(summary(results, copy, stops, bench.stop_timeout)))


if __name__ == "__main__":
    main()
