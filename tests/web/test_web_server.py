"""The web process as production serves it: gunicorn started from the Procfile's ``web`` line
(the gevent worker of ``stashhog.webserver``), against the test PostgreSQL and Redis.

Open WebSockets must not starve pages and API calls, the relay's limits must hold, and errors
gunicorn answers itself must come in the API's JSON shape.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest
import websocket
from honcho.environ import parse_procfile

from stashhog import events
from stashhog.auth.roles import Role
from stashhog.events import EventType
from stashhog.launcher.redis_server import free_port
from tests.support.workers import ROOT

MAX_SOCKETS = 80
# More than the 32 gthread threads that 32 open sockets used to exhaust.
OPEN_SOCKETS = 64
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class WebServer:
    """``gunicorn`` as the Procfile starts it, on a free loopback port."""

    def __init__(self, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = ROOT / "tests" / "artifacts" / "web-server.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        command = dict(parse_procfile((ROOT / "Procfile").read_text()).processes)["web"]
        env = env | {
            "PORT": str(self.port),
            "STASHHOG_MAX_WEBSOCKETS": str(MAX_SOCKETS),
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
        }
        self.log = open(self.log_path, "wb")  # noqa: SIM115  (closed in stop())
        self.proc = subprocess.Popen(
            ["/bin/sh", "-c", f"exec {command}"],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited; see {self.log_path}")
            try:
                if get(f"{self.url}/api/health/live")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"gunicorn did not answer; see {self.log_path}")

    def rss(self) -> int:
        process = psutil.Process(self.proc.pid)
        return sum(p.memory_info().rss for p in [process, *process.children(recursive=True)])

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.log.close()


def get(url: str, timeout: float = 5.0, token: str | None = None) -> tuple[int, bytes, float]:
    started = time.monotonic()
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with NO_PROXY.open(request, timeout=timeout) as reply:
            return reply.status, reply.read(), time.monotonic() - started
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), time.monotonic() - started


@pytest.fixture(scope="module")
def web(app, worker_env, role_tokens):
    server = WebServer(worker_env)
    server.token = role_tokens[Role.VIEWER]
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def open_socket(web: WebServer) -> websocket.WebSocket:
    ws = websocket.create_connection(
        f"ws://127.0.0.1:{web.port}/api/daemons/ws",
        timeout=10,
        header=[f"Authorization: Bearer {web.token}"],
    )
    ws.send(json.dumps({"type": "ping"}))
    assert json.loads(ws.recv()) == {"type": "pong"}
    return ws


def expect(ws: websocket.WebSocket, **fields) -> dict:
    while True:
        message = json.loads(ws.recv())
        if all(message.get(key) == value for key, value in fields.items()):
            return message


def test_open_sockets_leave_pages_and_the_api_answering(web, app):
    sockets = [open_socket(web) for _ in range(OPEN_SOCKETS)]
    try:
        for path in ("/api/daemons", "/daemons", "/api/health/live"):
            status, _body, took = get(web.url + path, token=web.token)
            assert status == 200 and took < 1.0, f"{path}: {status} in {took:.2f}s"
        with app.app_context():
            events.publish(EventType.JOB_UPDATE, None, marker="to-every-viewer")
        for ws in sockets:
            assert expect(ws, marker="to-every-viewer")["type"] == "job_update"
    finally:
        for ws in sockets:
            ws.close()


def test_sockets_beyond_the_limit_are_refused_before_the_upgrade(web):
    sockets = [open_socket(web) for _ in range(MAX_SOCKETS)]
    try:
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            websocket.create_connection(
                f"ws://127.0.0.1:{web.port}/api/daemons/ws",
                timeout=5,
                header=[f"Authorization: Bearer {web.token}"],
            )
        assert refused.value.status_code == 503
        assert b"live viewers" in refused.value.resp_body
        assert get(web.url + "/api/daemons", token=web.token)[0] == 200
    finally:
        for ws in sockets:
            ws.close()
    # Slots come back when sockets close.
    time.sleep(0.5)
    open_socket(web).close()


def test_an_oversized_message_closes_only_that_socket(web):
    other = open_socket(web)
    big = open_socket(web)
    before = web.rss()
    assert closed_by_server(big, "x" * (8 * 1024 * 1024))
    assert web.rss() - before < 32 * 1024 * 1024
    other.send(json.dumps({"type": "ping"}))
    assert json.loads(other.recv()) == {"type": "pong"}
    other.close()


def closed_by_server(ws: websocket.WebSocket, message: str) -> bool:
    """Send ``message``; True if the server closes the socket rather than answering."""
    ws.settimeout(5)
    try:
        ws.send(message)  # the server may close while this is still being sent
        opcode, _data = ws.recv_data(control_frame=True)
    except websocket.WebSocketTimeoutException:
        return False
    except (websocket.WebSocketConnectionClosedException, OSError):
        return True
    return opcode == websocket.ABNF.OPCODE_CLOSE


def test_subscriptions_per_socket_are_capped(web, app):
    ws = open_socket(web)
    limit = app.config["WS_MAX_SUBSCRIPTIONS"]
    replies = []
    for number in range(limit + 1):
        daemon_id = f"00000000-0000-4000-8000-{number:012d}"
        ws.send(json.dumps({"command": "subscribe", "daemon_id": daemon_id}))
        replies.append(json.loads(ws.recv()))
    assert all(r["type"] == "subscription_confirmed" for r in replies[:limit])
    assert replies[limit]["type"] == "error" and str(limit) in replies[limit]["message"]
    ws.close()


def test_an_over_long_uri_gets_the_json_error_shape(web):
    status, body, _took = get(f"{web.url}/api/daemons?q={'x' * 9000}")
    assert status == 414
    assert json.loads(body)["error"]["code"] == "uri_too_long"


def test_a_malformed_request_gets_the_json_error_shape(web):
    with socket.create_connection(("127.0.0.1", web.port), timeout=5) as raw:
        raw.sendall(b"GET /api/daemons HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n")
        reply = raw.recv(65536).decode()
    head, _, body = reply.partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 400") and "application/json" in head
    assert json.loads(body)["error"]["code"] == "bad_request"


def test_a_chunked_body_over_the_limit_gets_413(web, app, role_tokens):
    limit = app.config["MAX_CONTENT_LENGTH"]
    conn = http.client.HTTPConnection("127.0.0.1", web.port, timeout=10)
    body = b'{"configuration": {"pad": "' + b"x" * (limit + 1024) + b'"}}'
    chunks = (body[i : i + 65536] for i in range(0, len(body), 65536))
    conn.request(
        "PUT",
        "/api/daemons/00000000-0000-4000-8000-000000000000",
        body=chunks,
        headers={
            "Content-Type": "application/json",
            "Authorization": f"Bearer {role_tokens[Role.OPERATOR]}",
        },
        encode_chunked=True,
    )
    reply = conn.getresponse()
    assert reply.status == 413
    assert json.loads(reply.read())["error"]["code"] == "request_entity_too_large"
    conn.close()


def test_the_web_process_writes_an_access_log_with_timestamps(web):
    get(web.url + "/api/health/live")
    time.sleep(0.3)
    log = web.log_path.read_text()
    assert re.search(
        r'\[\d\d/\w+/\d{4}:[\d:]+ [+-]\d{4}\] \S+ "GET /api/health/live HTTP/1.1" 200', log
    )
    # Every other line carries a timestamp, the pid and the level.
    assert re.search(r"^\[\d{4}-\d\d-\d\d [\d:]+ [+-]\d{4}\] \[\d+\] \[INFO\] gunicorn", log, re.M)


SLOW_CLIENTS = 40


def test_clients_sending_headers_slowly_do_not_stop_the_server_answering_others(web):
    """Slowloris: each of 40 connections sends a request line and then one header byte at a
    time, never finishing. Under a threaded worker each would hold a thread; under gevent
    each holds a greenlet, and everyone else is still answered at once."""
    slow = [
        socket.create_connection(("127.0.0.1", web.port), timeout=5) for _ in range(SLOW_CLIENTS)
    ]
    try:
        for conn in slow:
            conn.sendall(b"GET /api/health/live HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        for _round in range(6):
            for conn in slow:
                conn.sendall(b"a")  # still inside the headers: the request never completes
            for path in ("/api/health/live", "/login"):
                status, _body, took = get(web.url + path, timeout=3)
                assert status == 200 and took < 1.0, f"{path}: {status} in {took:.2f}s"
            time.sleep(0.5)
    finally:
        for conn in slow:
            conn.close()
