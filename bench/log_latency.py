"""End-to-end log latency: from a daemon's ``self.log()`` to the line in connected browsers.

    .venv/bin/python -m bench.log_latency [--quick] [--rate 1000] [--clients 20,100]
                                          [--browsers 1] [--seconds 15] [--warmup 3] [--json]

A ``BENCH_FLOOD`` daemon (defined here, loaded by the worker through ``DAEMON_MODULES``) logs
``--rate`` lines per second on a real prefork ``daemons`` worker. The web process is the
Procfile's ``web`` line (gunicorn, the gevent worker of ``stashhog.webserver``), started by
``BenchServices.start_web``. Each step of ``--clients`` (a comma-separated list: one step per
count) has that many clients follow the daemon: ``--browsers`` of them are Chromium tabs on
its detail page, where a MutationObserver stamps each line as it enters the DOM; the rest are
plain WebSocket clients in a separate process, stamping each message as it arrives (its lines
are parsed after the step, so the clients' own parsing does not delay the next message).
Latency is that stamp minus the line's ``created_at`` (taken in ``log()``), on the same host
clock. Lines logged during ``--warmup`` are not counted.

The path measured: log() -> in-memory buffer -> flusher (at once when idle, writes at least
10 ms apart) -> one COPY per batch in PostgreSQL -> PUBLISH -> the web process's relay
thread -> per-connection queue -> the connection's greenlet -> WebSocket -> the page's live
connection -> drawn on the next animation frame.

``--quick`` is a smoke run (both steps, 3 s each). With ``--json`` the last line of stdout
is one JSON object: ``steps`` (one per client count) and the headline ``p99_ms_<clients>``
(``websocket_p99_ms`` of each step). Targets: p99 <= 50 ms at 20 clients, <= 100 ms at 100.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import time

from pydantic import Field

from stashhog.daemons.base import BaseDaemon
from stashhog.daemons.config import DaemonConfig
from stashhog.daemons.registry import register

FLOOD_TYPE = "BENCH_FLOOD"


class FloodConfig(DaemonConfig):
    rate: float = Field(1000, gt=0, le=100_000, description="Lines per second.")


@register(FLOOD_TYPE)
class FloodDaemon(BaseDaemon):
    """Logs ``rate`` numbered lines per second, paced in 5 ms steps."""

    Config = FloodConfig
    config: FloodConfig

    async def run(self) -> None:
        clock = asyncio.get_running_loop().time
        started, sent = clock(), 0
        while True:
            due = int((clock() - started) * self.config.rate)
            for number in range(sent, due):
                self.info(f"flood {number}")
            sent = max(sent, due)
            if await self.sleep(0.005):
                return


def main() -> None:
    args = parse_args()
    from bench import harness

    # The worker and the web process must know BENCH_FLOOD as well as the test types.
    harness.DAEMON_MODULES = f"{harness.DAEMON_MODULES},bench.log_latency"
    steps = []
    with harness.BenchServices() as bench:
        bench.start_daemons_worker(concurrency=1)
        web = bench.start_web()
        for clients in args.clients:
            steps.append(run(bench, web, args, clients))
    figures = {
        "rate": args.rate,
        "seconds": args.seconds,
        **{f"p99_ms_{step['clients']}": step["websocket_p99_ms"] for step in steps},
        "steps": steps,
    }
    if args.json:
        harness.print_json("log_latency", figures)


def run(bench, web, args: argparse.Namespace, clients: int) -> dict:
    """One step: measures, prints the table, and returns the figures for ``--json``."""
    from bench.harness import (
        BENCH_USER,
        SUMMARY_HEADERS,
        note,
        summary_figures,
        summary_row,
        table,
    )
    from bench.log_clients import Published, Tabs, line_latencies, read_websockets
    from stashhog.events import EventType, event_channel
    from stashhog.services.daemon_control import start_daemon, stop_daemon

    browsers = min(args.browsers, clients)
    daemon_id = bench.create_daemon(FLOOD_TYPE, {"rate": args.rate, "heartbeat_interval": 1})
    ws_clients = clients - browsers
    with bench.app.app_context():
        start_daemon(daemon_id, wait=10)
    note(
        f"daemon {daemon_id} logging {args.rate:g} lines/s; {args.browsers} Chromium tabs, "
        f"{ws_clients} WebSocket clients; web process pid {web.pid} (Procfile web line)"
    )
    with bench.app.app_context():  # where the relay reads: the hop before the web process
        published = Published(bench.redis_url, event_channel(EventType.DAEMON_LOG, daemon_id))
    spawn = multiprocessing.get_context("spawn")  # no fork of a process with threads
    results, stop = spawn.Queue(), spawn.Event()
    reader = spawn.Process(
        target=read_websockets,
        args=(web.ws_url, web.token, str(daemon_id), ws_clients, stop, results),
    )
    reader.start()
    try:
        assert results.get(timeout=60) == "ready"
        page_url = f"{web.url}/daemons/{daemon_id}"
        with Tabs(page_url, browsers, BENCH_USER, bench.password) as tabs:
            since = time.time() + args.warmup  # every client is connected from here on
            until = since + args.seconds
            tabs.observe(since, until)
            processes = {
                "web (gunicorn)": web.pid,
                "daemons worker": bench.workers[0].pid,
                "WebSocket clients": reader.pid,
                "Chromium": tabs.browser_pid(),
            }
            time.sleep(max(since - time.time(), 0))
            cpu_before = cpu_seconds(processes)
            time.sleep(until - time.time())
            cpu = {k: (v - cpu_before[k]) / args.seconds for k, v in cpu_seconds(processes).items()}
            time.sleep(1.0)  # for the last flush and draw
            browser_ms = tabs.samples()
            arrival_ms = tabs.samples("__arrivals")
        stop.set()
        received = line_latencies(results.get(timeout=120))
        ws_ms = [ms for created, ms in received if since <= created < until]
        redis_ms = [
            m for created, m in line_latencies(published.close()) if since <= created < until
        ]
    finally:
        stop.set()
        reader.join(30)
        with bench.app.app_context():
            stop_daemon(daemon_id, wait=10)
    written = count_lines(bench, daemon_id, since, until)
    note(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    note("CPU while measuring: " + ", ".join(f"{k} {v:.0%}" for k, v in cpu.items()))
    rows = [summary_row("log() -> published on Redis", redis_ms)]
    if browsers:
        rows.append(summary_row(f"log() -> message in tab, {browsers} tabs", arrival_ms))
        rows.append(summary_row(f"log() -> DOM, {browsers} Chromium tabs", browser_ms))
    if ws_clients:
        rows.append(summary_row(f"log() -> WebSocket, {ws_clients} clients", ws_ms))
    print(table(SUMMARY_HEADERS, rows))
    note(
        f"{written} lines logged in {args.seconds:g}s ({written / args.seconds:.0f}/s); "
        f"tabs drew {len(browser_ms)} of {written * browsers}, "
        f"WebSocket clients got {len(ws_ms)} of {written * ws_clients}"
    )
    latencies = {"redis": redis_ms, "tab_message": arrival_ms, "tab_dom": browser_ms,
                 "websocket": ws_ms}  # fmt: skip
    return {
        "clients": clients,
        "rate": args.rate,
        "seconds": args.seconds,
        "browsers": browsers,
        "websocket_clients": ws_clients,
        "lines_logged": written,
        "websocket_p99_ms": summary_figures(ws_ms)["p99_ms"],
        "dom_p99_ms": summary_figures(browser_ms)["p99_ms"],
        "lines_expected": {"tab_dom": written * browsers, "websocket": written * ws_clients},
        **{name: summary_figures(values) for name, values in latencies.items()},
        "cpu_share": {name: round(share, 3) for name, share in cpu.items()},
    }


def cpu_seconds(pids: dict[str, int | None]) -> dict[str, float]:
    """User + system CPU seconds of each process and its children."""
    import psutil

    totals = {}
    for name, pid in pids.items():
        total = 0.0
        try:
            root = psutil.Process(pid) if pid else None
            for process in [root, *root.children(recursive=True)] if root else []:
                times = process.cpu_times()
                total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
        totals[name] = total
    return totals


def count_lines(bench, daemon_id, since: float, until: float) -> int:
    with bench.pg_connect() as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM daemon_logs WHERE daemon_id = %s"
            " AND created_at >= to_timestamp(%s) AND created_at < to_timestamp(%s)",
            (str(daemon_id), since, until),
        )
        return cur.fetchone()[0]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: 3 s a step")
    parser.add_argument("--rate", type=float, default=1000, help="lines per second")
    parser.add_argument(
        "--clients", default="20,100", help="connected clients in all, a step per count"
    )
    parser.add_argument("--browsers", type=int, default=1, help="of which Chromium tabs")
    parser.add_argument("--seconds", type=float, default=15, help="measured duration")
    parser.add_argument("--warmup", type=float, default=3, help="unmeasured start")
    parser.add_argument(
        "--json", action="store_true", help="end with one line: a JSON object of the figures"
    )
    args = parser.parse_args()
    args.clients = [int(count) for count in str(args.clients).split(",") if count]
    if args.quick:
        args.seconds, args.warmup = 3.0, 1.0
    return args


if __name__ == "__main__":
    main()
