"""How many live viewers one web process holds: its memory, API latency and event fan-out with
N WebSockets open.

    .venv/bin/python -m bench.viewers [--steps 0,100,250,450] [--requests 50] [--events 20]
                                      [--max-websockets N] [--quick] [--json]

The web process is the Procfile's ``web`` line (gunicorn, the gevent worker of
``stashhog.webserver``, one worker), started by ``BenchServices.start_web`` on a bench
database; no Celery worker runs. Clients are asyncio + wsproto connections in a thread of this
process, each as a detail page opens it: a ping, then a subscription to the same daemon.

At each step, once N sockets are open: the RSS of the web process tree (master and worker,
psutil) and its growth per socket since step 0; ``--requests`` sequential ``GET
/api/daemons``, a new connection each; and ``--events`` fan-outs, one at a time: a
``daemon_log`` event for the followed daemon sent through ``stashhog.events.publish``, timed
from just before the PUBLISH until every client has received it ("all": the last client;
"each": every delivery). Then sockets are opened up to the relay's cap (``MAX_WEBSOCKETS``,
500 unless ``--max-websockets`` or STASHHOG_MAX_WEBSOCKETS sets it) and one more must be
refused with 503 before the upgrade, while ``/api/daemons`` still answers.

``--quick``: steps 0 and 50, a cap of 50, 20 requests and 5 events (a few seconds). Every
wait has a timeout; sockets are closed and the web process stopped whatever happens.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import threading
import time
import urllib.error
import urllib.request

from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Ping,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)

from bench import harness
from bench.harness import note, summary_figures

CONNECTS_AT_ONCE = 20
SETTLE_SECONDS = 0.5
FAN_OUT_TIMEOUT = 10.0
MARKER = '"bench_marker"'


class Refused(Exception):
    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"HTTP {status}: {body[:200]!r}")
        self.status, self.body = status, body


class Socket:
    """One client WebSocket over asyncio streams; answers the server's pings by itself."""

    def __init__(self, reader, writer, ws: WSConnection) -> None:
        self.reader, self.writer, self.ws = reader, writer, ws
        self.pending: list[str] = []
        self.parts: list[str] = []

    @classmethod
    async def connect(cls, host: str, port: int, path: str, token: str) -> Socket:
        reader, writer = await asyncio.open_connection(host, port)
        ws = WSConnection(ConnectionType.CLIENT)
        headers = [(b"authorization", f"Bearer {token}".encode())]
        writer.write(ws.send(Request(host=f"{host}:{port}", target=path, extra_headers=headers)))
        status, body = 0, b""
        try:
            while data := await reader.read(65536):
                ws.receive_data(data)
                for event in ws.events():
                    if isinstance(event, AcceptConnection):
                        return cls(reader, writer, ws)
                    if isinstance(event, RejectConnection):
                        status = event.status_code
                        if not event.has_body:
                            raise Refused(status, body)
                    elif isinstance(event, RejectData):
                        body += event.data
                        if event.body_finished:
                            raise Refused(status, body)
            raise ConnectionError("closed during the handshake")
        except BaseException:
            writer.close()
            raise

    async def send(self, text: str) -> None:
        self.writer.write(self.ws.send(TextMessage(data=text)))
        await self.writer.drain()

    async def receive(self) -> str:
        """The next text message; raises ConnectionError when the server closed."""
        while not self.pending:
            data = await self.reader.read(65536)
            if not data:
                raise ConnectionError("closed by the server")
            self.ws.receive_data(data)
            for event in self.ws.events():
                if isinstance(event, TextMessage):
                    self.parts.append(event.data)
                    if event.message_finished:
                        self.pending.append("".join(self.parts))
                        self.parts.clear()
                elif isinstance(event, Ping):
                    self.writer.write(self.ws.send(event.response()))
                elif isinstance(event, CloseConnection):
                    raise ConnectionError(f"closed by the server ({event.code})")
        return self.pending.pop(0)

    async def expect(self, message_type: str) -> dict:
        while (message := json.loads(await self.receive()))["type"] != message_type:
            pass
        return message

    async def close(self) -> None:
        try:
            self.writer.write(self.ws.send(CloseConnection(code=1000)))
            self.writer.close()
            await asyncio.wait_for(self.writer.wait_closed(), 2)
        except (TimeoutError, OSError, RuntimeError):
            pass


class Viewers:
    """WebSocket clients on an event loop in a thread of their own; the bench thread calls in."""

    def __init__(self, ws_url: str, daemon_id: str, token: str) -> None:
        self.token = token  # a script's bearer token: the socket refuses anonymous clients
        host_port, self.path = ws_url.removeprefix("ws://").split("/", 1)
        host, port = host_port.split(":")
        self.host, self.port, self.path = host, int(port), f"/{self.path}"
        self.daemon_id = daemon_id
        self.sockets: list[Socket] = []
        self.readers: list[asyncio.Task] = []
        self.waiting: dict[int, tuple[asyncio.Event, list[float]]] = {}
        self.markers = itertools.count()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> Viewers:
        self.thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        try:
            self.call(self._close_all(), timeout=30)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)

    def call(self, coro, timeout: float):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def open(self, count: int) -> None:
        """Open sockets until ``count`` are open, at most CONNECTS_AT_ONCE handshakes at a time."""
        missing = count - len(self.sockets)
        if missing > 0:
            self.call(self._open(missing), timeout=30 + missing * 0.2)

    def try_one(self) -> tuple[int, bytes]:
        """One more socket: (101, b"") if it was accepted (and kept), else the refusal."""
        try:
            self.call(self._open(1), timeout=15)
        except Refused as refused:
            return refused.status, refused.body
        return 101, b""

    def fan_out(self, publish) -> tuple[float, list[float]]:
        """``publish(marker)`` returns its start (perf_counter); the delays, seconds, until each
        socket had the event. Fewer than the open sockets when some missed it in time."""
        return self.call(self._fan_out(publish), timeout=FAN_OUT_TIMEOUT + 5)

    async def _open(self, count: int) -> None:
        gate = asyncio.Semaphore(CONNECTS_AT_ONCE)

        async def one() -> None:
            async with gate:
                sock = await asyncio.wait_for(
                    Socket.connect(self.host, self.port, self.path, self.token), timeout=10
                )
                await sock.send('{"type": "ping"}')
                await asyncio.wait_for(sock.expect("pong"), timeout=10)
                await sock.send(json.dumps({"command": "subscribe", "daemon_id": self.daemon_id}))
                await asyncio.wait_for(sock.expect("subscription_confirmed"), timeout=10)
                self.sockets.append(sock)
                self.readers.append(asyncio.create_task(self._read(sock)))

        await asyncio.gather(*(one() for _ in range(count)))

    async def _read(self, sock: Socket) -> None:
        try:
            while True:
                text = await sock.receive()
                if MARKER not in text:
                    continue
                entry = self.waiting.get(json.loads(text)["bench_marker"])
                if entry is not None:
                    entry[1].append(time.perf_counter())
                    if len(entry[1]) == len(self.sockets):
                        entry[0].set()
        except ConnectionError as exc:
            note(f"a viewer lost its socket: {exc}")

    async def _fan_out(self, publish) -> tuple[float, list[float]]:
        marker = next(self.markers)
        done, arrivals = self.waiting[marker] = (asyncio.Event(), [])
        started = publish(marker)  # blocks the loop for one PUBLISH: nothing is read before it
        try:
            await asyncio.wait_for(done.wait(), FAN_OUT_TIMEOUT)
        except TimeoutError:
            note(f"event {marker}: {len(arrivals)} of {len(self.sockets)} sockets had it")
        del self.waiting[marker]
        return started, [arrival - started for arrival in arrivals]

    async def _close_all(self) -> None:
        for task in self.readers:
            task.cancel()
        await asyncio.gather(*(sock.close() for sock in self.sockets))
        self.sockets.clear()
        self.readers.clear()


def main() -> None:
    args = parse_args()
    env = {"STASHHOG_MAX_WEBSOCKETS": str(args.max_websockets)} if args.max_websockets else {}
    with harness.BenchServices() as bench:
        cap = args.max_websockets or bench.app.config["MAX_WEBSOCKETS"]
        if max(args.steps) > cap:
            raise SystemExit(f"steps go past the cap of {cap} sockets")
        daemon_id = str(bench.create_daemon("TEST_DAEMON", {}))
        web = bench.start_web(env)
        with Viewers(web.ws_url, daemon_id, web.token) as viewers:
            figures = measure(bench, web, viewers, daemon_id, cap, args)
    if args.json:
        harness.print_json("viewers", figures)


def measure(bench, web, viewers: Viewers, daemon_id: str, cap: int, args) -> dict:
    from stashhog import events
    from stashhog.events import EventType

    def publish(marker: int) -> float:
        with bench.app.app_context():
            started = time.perf_counter()
            events.publish(EventType.DAEMON_LOG, daemon_id, lines=[], bench_marker=marker)
            return started

    api_get(web, 10)  # warm the worker: imports, pools, first queries
    steps, rss_before = [], None
    for count in args.steps:
        viewers.open(count)
        time.sleep(SETTLE_SECONDS)
        rss = sum(process.memory_info().rss for process in web.processes())
        rss_before = rss if rss_before is None else rss_before
        step = step_figures(count, rss, rss_before, api_get(web, args.requests))
        if count:
            step |= fan_out_figures(web, viewers, publish, args.events)
        steps.append(step)
        note(f"{count} viewers: {step_line(step)}")
    refusal = probe_cap(web, viewers, cap)
    print(harness.table(HEADERS, [table_row(step) for step in steps]))
    print(
        f"socket {cap + 1} with {refusal['open']} open: HTTP {refusal['status']} "
        f"({refusal['code']}); GET /api/daemons at the cap: {refusal['api_status']} in "
        f"{refusal['api_ms']:.1f} ms"
    )
    note(harness.machine_load())
    last = steps[-1]
    return {
        "steps": args.steps,
        "max_websockets": cap,
        "refused_status": refusal["status"],
        "rss_per_socket_kb": last["rss_per_socket_kb"],
        "api_p99_ms": last["api"]["p99_ms"],
        "fanout_p99_ms": last.get("fanout_all", {}).get("p99_ms"),
        "rows": steps,
        "refusal": refusal,
    }


def api_get(web, count: int) -> list[float]:
    """``count`` sequential GET /api/daemons, ms each (a new connection each time)."""
    took = []
    for _ in range(count):
        status, ms = api_once(web)
        if status != 200:
            raise RuntimeError(f"GET /api/daemons answered {status}; see {web.log_path}")
        took.append(ms)
    return took


def api_once(web) -> tuple[int, float]:
    started = time.perf_counter()
    try:
        url, headers = f"{web.url}/api/daemons", harness.bearer(web.token)
        request = urllib.request.Request(url, headers=headers)
        with harness.HTTP.open(request, timeout=10) as reply:
            reply.read()
            status = reply.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    return status, (time.perf_counter() - started) * 1000


def step_figures(count: int, rss: int, rss_before: int, api_ms: list[float]) -> dict:
    per_socket = (rss - rss_before) / count / 1024 if count else None
    return {
        "viewers": count,
        "rss_mb": round(rss / 2**20, 1),
        "rss_per_socket_kb": round(per_socket, 1) if per_socket is not None else None,
        "load_1min": round(os.getloadavg()[0], 2),
        "api": summary_figures(api_ms),
    }


def fan_out_figures(web, viewers: Viewers, publish, count: int) -> dict:
    pids = [process.pid for process in web.processes()]
    cpu_before = sum(harness.cpu_seconds(pids).values())
    all_ms, each_ms, missed = [], [], 0
    for _ in range(count):
        _started, delays = viewers.fan_out(publish)
        each_ms += [delay * 1000 for delay in delays]
        if len(delays) == len(viewers.sockets):
            all_ms.append(max(delays) * 1000)
        else:
            missed += 1
        time.sleep(0.02)
    cpu = sum(harness.cpu_seconds(pids).values()) - cpu_before
    return {
        "fanout_all": summary_figures(all_ms),
        "fanout_each": summary_figures(each_ms),
        "fanout_missed_events": missed,
        "web_cpu_ms_per_event": round(cpu / count * 1000, 2),
    }


def probe_cap(web, viewers: Viewers, cap: int) -> dict:
    """Open up to the cap, then one more: it must get 503 before the upgrade."""
    viewers.open(cap)
    open_count = len(viewers.sockets)
    status, body = viewers.try_one()
    try:
        code = json.loads(body)["error"]["code"]
    except (ValueError, KeyError, TypeError):
        code = body[:80].decode(errors="replace")
    api_status, api_ms = api_once(web)
    return {
        "open": open_count,
        "status": status,
        "code": code,
        "api_status": api_status,
        "api_ms": round(api_ms, 2),
    }


HEADERS = [
    "viewers",
    "web RSS MB",
    "KB/socket",
    "GET p50 ms",
    "GET p99 ms",
    "fan-out all p50",
    "all p99",
    "each p50",
    "web CPU ms/event",
    "load",
]


def table_row(step: dict) -> list[str]:
    def ms(name: str, p: str) -> str:
        value = step.get(name, {}).get(p)
        return "-" if value is None else f"{value:.1f}"

    per_socket = step["rss_per_socket_kb"]
    cpu = step.get("web_cpu_ms_per_event")
    return [
        str(step["viewers"]),
        f"{step['rss_mb']:.1f}",
        "-" if per_socket is None else f"{per_socket:.1f}",
        ms("api", "p50_ms"),
        ms("api", "p99_ms"),
        ms("fanout_all", "p50_ms"),
        ms("fanout_all", "p99_ms"),
        ms("fanout_each", "p50_ms"),
        "-" if cpu is None else f"{cpu:.2f}",
        f"{step['load_1min']:.1f}",
    ]


def step_line(step: dict) -> str:
    return ", ".join(f"{h} {c}" for h, c in zip(HEADERS[1:], table_row(step)[1:], strict=True))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--steps", default="0,100,250,450", help="open sockets at each step (comma-separated)"
    )
    parser.add_argument("--requests", type=int, default=50, help="GET /api/daemons per step")
    parser.add_argument("--events", type=int, default=20, help="fan-outs timed per step")
    parser.add_argument(
        "--max-websockets",
        type=int,
        help="STASHHOG_MAX_WEBSOCKETS for the web process (default: its own, 500)",
    )
    parser.add_argument("--quick", action="store_true", help="steps 0,50, cap 50, a few seconds")
    harness.add_json_option(parser)
    args = parser.parse_args()
    if args.quick:
        args.steps, args.requests, args.events = "0,50", 20, 5
        args.max_websockets = args.max_websockets or 50
    args.steps = sorted({int(step) for step in args.steps.split(",")})
    if args.steps[0] < 0 or args.requests < 1 or args.events < 1:
        parser.error("steps must be ≥ 0, requests and events ≥ 1")
    return args


if __name__ == "__main__":
    main()
