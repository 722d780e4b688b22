"""The clients of ``bench.log_latency``, each stamping log lines as they reach it: Chromium
tabs on the daemon's page (message arrival and DOM insertion), plain WebSocket clients in a
process of their own, and a subscriber on the daemon's Redis channel (the hop before the web
process).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from datetime import datetime

CHROMIUM_ARGS = [
    *("--no-sandbox", "--disable-gpu", "--disable-background-networking"),
    *("--disable-component-update", "--disable-sync", "--no-first-run"),
]


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
    once all are subscribed, then (message, received at) of every message when ``stop`` is
    set."""
    import threading

    import websocket

    samples: list[tuple[str, float]] = []
    lock = threading.Lock()
    subscribed = threading.Barrier(clients + 1)

    def follow() -> None:
        # Pure-Python UTF-8 validation would make the client, not the server, the bottleneck.
        header = [f"Authorization: Bearer {token}"]
        # A generous timeout while connecting: 100 handshakes at once on a loaded machine
        # overran 0.5 s (H4); the short one only paces the loop below.
        ws = websocket.create_connection(
            ws_url, timeout=30, skip_utf8_validation=True, header=header
        )
        ws.send(json.dumps({"command": "subscribe", "daemon_id": daemon_id}))
        mine = []
        while json.loads(ws.recv())["type"] != "subscription_confirmed":
            pass
        ws.settimeout(0.5)
        subscribed.wait()
        while not stop.is_set():
            try:
                mine.append((ws.recv(), time.time()))
            except websocket.WebSocketTimeoutException:
                continue
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


class Published:
    """(message, received at) of each message on the daemon's Redis channel, in a thread of
    this process (not the clients' process, whose threads would delay it)."""

    def __init__(self, redis_url: str, channel: str) -> None:
        import threading

        import redis

        self.pubsub = redis.Redis.from_url(redis_url).pubsub(ignore_subscribe_messages=True)
        self.pubsub.subscribe(channel)
        self.received: list[tuple[str, float]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.listen, daemon=True)
        self.thread.start()

    def listen(self) -> None:
        while not self.stop.is_set():
            if (message := self.pubsub.get_message(timeout=0.1)) is not None:
                self.received.append((message["data"].decode(), time.time()))

    def close(self) -> list[tuple[str, float]]:
        self.stop.set()
        self.thread.join(5)
        self.pubsub.close()
        return self.received


def line_latencies(received: list[tuple[str, float]]):
    """(created, latency ms) of every log line in the messages received."""
    for data, at in received:
        for line in json.loads(data).get("lines", ()):
            created = datetime.fromisoformat(line["created_at"]).timestamp()
            yield created, (at - created) * 1000
