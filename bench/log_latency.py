"""End-to-end log latency: from a daemon's ``self.log()`` to the line in connected browsers.

    .venv/bin/python -m bench.log_latency [--rate 1000] [--clients 20] [--browsers 1]
                                          [--seconds 15] [--warmup 3] [--json]

A ``BENCH_FLOOD`` daemon (defined here, loaded by the worker through ``DAEMON_MODULES``) logs
``--rate`` lines per second on a real prefork ``daemons`` worker. The web process is the
Procfile's ``web`` line (gunicorn, the gevent worker of ``stashhog.webserver``), started by
``BenchServices.start_web``. ``--clients`` clients follow the daemon: ``--browsers`` of them
are Chromium tabs on its detail page, where a MutationObserver stamps each line as it enters
the DOM; the rest are plain WebSocket clients in a separate process, stamping each line as it
arrives. Latency is that stamp minus the line's ``created_at`` (taken in ``log()``), on the
same host clock. Lines logged during ``--warmup`` are not counted.

The path measured: log() -> in-memory buffer -> flusher (every 100 ms) -> one INSERT per
batch in PostgreSQL -> PUBLISH -> the web process's relay thread -> per-connection queue ->
the connection's greenlet -> WebSocket -> the page's live connection -> drawn on the next
animation frame.

With ``--json`` the last line of stdout is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import shutil
import time
from datetime import datetime

from pydantic import Field

from stashhog.daemons.base import BaseDaemon
from stashhog.daemons.config import DaemonConfig
from stashhog.daemons.registry import register

FLOOD_TYPE = "BENCH_FLOOD"
CHROMIUM_ARGS = [
    *("--no-sandbox", "--disable-gpu", "--disable-background-networking"),
    *("--disable-component-update", "--disable-sync", "--no-first-run"),
]


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


# Runs in each tab before the page's scripts: stamp every log line as its message arrives.
ARRIVAL_JS = """
window.__arrivals = [];
const NativeWebSocket = window.WebSocket;
window.WebSocket = function (...args) {
  const socket = new NativeWebSocket(...args);
  socket.addEventListener("message", (event) => {
    const now = performance.timeOrigin + performance.now();
    const window_ = window.__window;
    if (!window_ || !event.data.startsWith('{"type": "daemon_log"')) return;
    for (const line of JSON.parse(event.data).lines) {
      const created = Date.parse(line.created_at);
      if (created >= window_[0] && created < window_[1]) window.__arrivals.push(now - created);
    }
  });
  return socket;
};
Object.assign(window.WebSocket, NativeWebSocket);
window.WebSocket.prototype = NativeWebSocket.prototype;
"""

# Runs in each tab: stamp every line as it enters the log terminal.
OBSERVER_JS = """
([since, until]) => {
  window.__latencies = [];
  window.__window = [since, until];
  const terminal = document.querySelector("[data-log-terminal]");
  new MutationObserver((records) => {
    const now = performance.timeOrigin + performance.now();
    for (const record of records) for (const node of record.addedNodes) {
      if (!node.classList || !node.classList.contains("log-line")) continue;
      const created = Date.parse(node.querySelector(".t").title);
      if (created >= since && created < until) window.__latencies.push(now - created);
    }
  }).observe(terminal, { childList: true });
}
"""


def main() -> None:
    args = parse_args()
    from bench import harness

    # The worker and the web process must know BENCH_FLOOD as well as the test types.
    harness.DAEMON_MODULES = f"{harness.DAEMON_MODULES},bench.log_latency"
    with harness.BenchServices() as bench:
        bench.start_daemons_worker(concurrency=1)
        figures = run(bench, bench.start_web(), args)
    if args.json:
        harness.print_json("log_latency", figures)


def run(bench, web, args: argparse.Namespace) -> dict:
    """Measures, prints the table, and returns the figures for ``--json``."""
    from bench.harness import (
        BENCH_USER,
        SUMMARY_HEADERS,
        note,
        summary_figures,
        summary_row,
        table,
    )
    from stashhog.services.daemon_control import start_daemon, stop_daemon

    daemon_id = bench.create_daemon(FLOOD_TYPE, {"rate": args.rate, "heartbeat_interval": 1})
    ws_clients = args.clients - args.browsers
    with bench.app.app_context():
        start_daemon(daemon_id, wait=10)
    note(
        f"daemon {daemon_id} logging {args.rate:g} lines/s; {args.browsers} Chromium tabs, "
        f"{ws_clients} WebSocket clients; web process pid {web.pid} (Procfile web line)"
    )
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
        with Tabs(page_url, args.browsers, BENCH_USER, bench.password) as tabs:
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
        ws_ms = [ms for created, ms in results.get(timeout=60) if since <= created < until]
    finally:
        stop.set()
        reader.join(30)
        with bench.app.app_context():
            stop_daemon(daemon_id, wait=10)
    written = count_lines(bench, daemon_id, since, until)
    note(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    note("CPU while measuring: " + ", ".join(f"{k} {v:.0%}" for k, v in cpu.items()))
    rows = []
    if args.browsers:
        rows.append(summary_row(f"log() -> message in tab, {args.browsers} tabs", arrival_ms))
        rows.append(summary_row(f"log() -> DOM, {args.browsers} Chromium tabs", browser_ms))
    if ws_clients:
        rows.append(summary_row(f"log() -> WebSocket, {ws_clients} clients", ws_ms))
    print(table(SUMMARY_HEADERS, rows))
    note(
        f"{written} lines logged in {args.seconds:g}s ({written / args.seconds:.0f}/s); "
        f"tabs drew {len(browser_ms)} of {written * args.browsers}, "
        f"WebSocket clients got {len(ws_ms)} of {written * ws_clients}"
    )
    latencies = {"tab_message": arrival_ms, "tab_dom": browser_ms, "websocket": ws_ms}
    return {
        "rate": args.rate,
        "seconds": args.seconds,
        "browsers": args.browsers,
        "websocket_clients": ws_clients,
        "lines_logged": written,
        "websocket_p99_ms": summary_figures(ws_ms)["p99_ms"],
        "dom_p99_ms": summary_figures(browser_ms)["p99_ms"],
        "lines_expected": {"tab_dom": written * args.browsers, "websocket": written * ws_clients},
        **{name: summary_figures(values) for name, values in latencies.items()},
        "cpu_share": {name: round(share, 3) for name, share in cpu.items()},
    }


class Tabs:
    """``count`` Chromium tabs on the daemon's detail page, each with its live connection."""

    def __init__(self, url: str, count: int, username: str, password: str) -> None:
        self.url, self.count, self.pages = url, count, []
        self.username, self.password = username, password

    def __enter__(self) -> Tabs:
        from playwright.sync_api import sync_playwright

        self.playwright = sync_playwright().start()
        path = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium")
        self.browser = self.playwright.chromium.launch(
            executable_path=path, headless=True, args=CHROMIUM_ARGS
        )
        for _ in range(self.count):
            page = self.browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
            page.add_init_script(ARRIVAL_JS)
            self.sign_in(page)
            page.wait_for_selector('#live-pill[data-state="live"]')
            self.pages.append(page)
        return self

    def sign_in(self, page) -> None:
        """Through the login form, which then leads to the daemon's page."""
        page.goto(self.url)  # redirected to /login?next=…
        page.fill("input[name=username]", self.username)
        page.fill("input[name=password]", self.password)
        page.click("button[type=submit]")
        page.wait_for_url(self.url)

    def browser_pid(self) -> int | None:
        """The Chromium process Playwright launched (a child of its driver)."""
        import psutil

        for child in psutil.Process().children(recursive=True):
            if "chrom" in child.name() and child.parent().name() != child.name():
                return child.pid
        return None

    def observe(self, since: float, until: float) -> None:
        for page in self.pages:
            page.evaluate(OBSERVER_JS, [since * 1000, until * 1000])

    def samples(self, name: str = "__latencies") -> list[float]:
        return [value for page in self.pages for value in page.evaluate(f"window.{name}")]

    def __exit__(self, *_exc) -> None:
        self.browser.close()
        self.playwright.stop()


def read_websockets(ws_url, token, daemon_id, clients, stop, results) -> None:
    """In its own process: ``clients`` WebSocket clients following the daemon. Sends "ready"
    once all are subscribed, then (created, latency ms) of every line when ``stop`` is set."""
    import threading

    import websocket

    samples: list[tuple[float, float]] = []
    lock = threading.Lock()
    subscribed = threading.Barrier(clients + 1)

    def follow() -> None:
        # Pure-Python UTF-8 validation would make the client, not the server, the bottleneck.
        header = [f"Authorization: Bearer {token}"]
        ws = websocket.create_connection(
            ws_url, timeout=0.5, skip_utf8_validation=True, header=header
        )
        ws.send(json.dumps({"command": "subscribe", "daemon_id": daemon_id}))
        mine = []
        while json.loads(ws.recv())["type"] != "subscription_confirmed":
            pass
        subscribed.wait()
        while not stop.is_set():
            try:
                message = json.loads(ws.recv())
            except websocket.WebSocketTimeoutException:
                continue
            now = time.time()
            for line in message.get("lines", ()):
                created = datetime.fromisoformat(line["created_at"]).timestamp()
                mine.append((created, (now - created) * 1000))
        ws.close()
        with lock:
            samples.extend(mine)

    threads = [threading.Thread(target=follow) for _ in range(clients)]
    for thread in threads:
        thread.start()
    subscribed.wait()
    results.put("ready")
    for thread in threads:
        thread.join()
    results.put(samples)


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
    parser.add_argument("--rate", type=float, default=1000, help="lines per second")
    parser.add_argument("--clients", type=int, default=20, help="connected clients in all")
    parser.add_argument("--browsers", type=int, default=1, help="of which Chromium tabs")
    parser.add_argument("--seconds", type=float, default=15, help="measured duration")
    parser.add_argument("--warmup", type=float, default=3, help="unmeasured start")
    parser.add_argument(
        "--json", action="store_true", help="end with one line: a JSON object of the figures"
    )
    args = parser.parse_args()
    args.browsers = min(args.browsers, args.clients)
    return args


if __name__ == "__main__":
    main()
