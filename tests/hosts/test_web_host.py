"""Fault 5: the web's host cut off from Redis. The web process (gunicorn, as the Procfile runs
it) lives on the "ctl" host, reached by the test through a veth of its own; a daemon keeps
running on a worker host, which still reaches both services, and keeps logging.

While the web's host has no Redis: ``/api/health`` is 503 naming Redis (the panel's banner
reads it), every command answers 503, and nothing is half-applied (the database is as it
was). After the heal: health is 200 again, commands work, and a live viewer that does what
the panel's log view does misses nothing: the lines the socket sent, plus what it re-reads
from REST when the relay says ``resync`` or when it had to reconnect (the burst that arrives
at the heal can overrun a viewer's queue, and the relay drops a viewer that far behind), are
every line stored.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest
import requests
import simple_websocket

from stashhog.auth.roles import Role
from stashhog.services.daemon_control import start_daemon, stop_daemon
from tests.hosts.cluster import ARTIFACTS
from tests.hosts.hosts import free_root_subnet, in_namespace
from tests.support import access
from tests.support.tickers import fresh, make_ticker
from tests.support.wait import eventually
from tests.support.workers import ROOT, end_process

pytestmark = [pytest.mark.hosts, pytest.mark.timeout(300)]
PORT = 5000
# Long enough for every check below, and for a burst at the heal larger than a viewer's queue
# (the relay's subscriber connection survives a link that is down: what Redis sent meanwhile
# is retransmitted at once, ~10 messages a second of cut, 256 queued at most).
CUT_SECONDS = 35.0


@pytest.fixture(scope="module")
def web(cluster, hosts_app):
    """The web process on the ctl host (and a jobs worker on w1, so that all is healthy
    before the fault); yields its base URL."""
    cluster.add_worker("w1", "jobs", "-P", "solo").wait_ready(hosts_app.extensions["celery"])
    ctl = cluster.hosts["ctl"]
    link = cluster.net.link("root-web", None, ctl.namespace, free_root_subnet())
    env = dict(ctl.env, STASHHOG_TRUSTED_HOSTS=link.b_ip)
    command = [sys.executable, "-m", "gunicorn", "-c", "python:stashhog.webserver", "-w", "1",
               "-b", f"{link.b_ip}:{PORT}", "app:app"]  # fmt: skip
    log = open(ARTIFACTS / "web.log", "wb")  # noqa: SIM115  (closed below)
    proc = subprocess.Popen(in_namespace(ctl.namespace, command), cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)  # fmt: skip
    base = f"http://{link.b_ip}:{PORT}"
    try:
        assert eventually(lambda: answers(f"{base}/api/health/live"), timeout=30), "web down"
        yield base
    finally:
        end_process(proc)
        log.close()


def answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


@pytest.fixture(scope="module")
def admin(hosts_app, web):
    session = requests.Session()
    session.headers.update(access.bearer(access.tokens_per_role(hosts_app)[Role.ADMIN]))
    return session


def made_daemon(name: str, running: bool):
    daemon = make_ticker(name)
    if running:
        assert start_daemon(daemon.id, wait=15)["daemon"]["status"] == "RUNNING"
    return daemon.id


def row(daemon_id) -> tuple:
    found = fresh(daemon_id)
    return found.desired_state, found.status, found.generation, found.auto_start


class Viewer:
    """A live viewer following one daemon as the panel's log view does: the lines the socket
    sends, and when the relay says ``resync`` or the socket is dropped (a viewer too far
    behind is, by the relay's rule), a re-read from REST of what came after the last line it
    holds, once it is subscribed again."""

    def __init__(self, base: str, token_headers: dict, daemon_id, after) -> None:
        self.url = base.replace("http://", "ws://") + "/api/daemons/ws"
        self.headers, self.daemon_id, self.after = token_headers, str(daemon_id), after
        self.held: list[int] = []  # line ids, in the order the page got them
        self.resyncs = self.reconnects = 0
        self.ws = self._subscribe()
        self.closing = False
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _subscribe(self):
        ws = simple_websocket.Client.connect(self.url, headers=self.headers)
        ws.send(json.dumps({"command": "subscribe", "daemon_id": self.daemon_id}))
        return ws

    def _catch_up(self) -> None:
        if self.held:
            self.held += self.after(self.held[-1])

    def _read(self) -> None:
        while not self.closing:
            try:
                message = json.loads(self.ws.receive())
            except (simple_websocket.ConnectionClosed, OSError):
                if self.closing:
                    return
                self.reconnects += 1
                self.ws = eventually(self._reconnect, timeout=30, interval=0.5)
                continue
            if message.get("type") == "daemon_log":
                self.held += [line["id"] for line in message["lines"]]
            elif message.get("type") == "subscription_confirmed" and self.reconnects:
                self._catch_up()  # subscribed again: what came meanwhile, from REST
            elif message.get("type") == "resync":
                self.resyncs += 1
                self._catch_up()

    def _reconnect(self):
        try:
            return self._subscribe()
        except (simple_websocket.ConnectionError, OSError):
            return None

    def line_ids(self) -> list[int]:
        return list(self.held)

    def close(self) -> None:
        self.closing = True
        self.ws.close()


def test_5_web_host_cut_off_from_redis(cluster, hosts_app, web, admin):
    running = made_daemon("web-fault-running", running=True)
    stopped = made_daemon("web-fault-stopped", running=False)
    newer = lambda last: rest_ids(admin, web, running, after=last, upto=None)  # noqa: E731
    viewer = Viewer(web, dict(admin.headers), running, after=newer)
    assert eventually(lambda: len(viewer.line_ids()) > 20, timeout=15), "no live lines"
    healthy = admin.get(f"{web}/api/health", timeout=10)
    assert healthy.status_code == 200, healthy.text
    before = {d: row(d) for d in (running, stopped)}

    ctl = cluster.hosts["ctl"]
    cut_at = time.monotonic()
    ctl.cut("redis")
    try:
        report = eventually(lambda: unhealthy(admin, web), timeout=15, interval=0.5)
        assert report and "redis" in report["failing"], report  # what the banner shows
        for method, path, body in (
            ("post", f"/api/daemons/{running}/stop", None),
            ("post", f"/api/daemons/{stopped}/start", None),
            ("post", f"/api/daemons/{running}/restart", None),
            ("put", f"/api/daemons/{running}", {"auto_start": True}),
        ):
            answer = getattr(admin, method)(f"{web}{path}", json=body, timeout=15)
            assert answer.status_code == 503, (path, answer.status_code, answer.text[:300])
            assert answer.json()["error"]["code"], answer.text  # the one error shape
        # Nothing half-applied: each row is as it was (the worker host, which still has
        # Redis and PostgreSQL, keeps the daemon running and logging meanwhile).
        assert {d: row(d) for d in (running, stopped)} == before
        time.sleep(max(0.0, CUT_SECONDS - (time.monotonic() - cut_at)))
    finally:
        ctl.heal()

    assert eventually(lambda: answers_health(admin, web), timeout=30, interval=0.5)
    seen_after_heal = len(viewer.line_ids())
    assert eventually(lambda: len(viewer.line_ids()) > seen_after_heal + 20, timeout=30)
    assert_gap_free(admin, web, viewer, running)
    print(f"fault 5: {len(viewer.line_ids())} lines live, {viewer.resyncs} resync(s), "
          f"{viewer.reconnects} reconnect(s)")  # fmt: skip

    stop = admin.post(f"{web}/api/daemons/{running}/stop?wait=10", timeout=20)
    assert stop.status_code == 200, stop.text
    viewer.close()
    with hosts_app.app_context():
        stop_daemon(running, wait=10)


def unhealthy(admin, web) -> dict | None:
    try:
        answer = admin.get(f"{web}/api/health", timeout=10)
    except requests.RequestException:
        return None
    return answer.json() if answer.status_code == 503 else None


def answers_health(admin, web) -> bool:
    try:
        return admin.get(f"{web}/api/health", timeout=10).status_code == 200
    except requests.RequestException:
        return False


def assert_gap_free(admin, web, viewer: Viewer, daemon_id) -> None:
    """What the page holds is every stored line from its first to its last."""
    held = viewer.line_ids()
    first, last = held[0], max(held)
    stored = rest_ids(admin, web, daemon_id, after=first - 1, upto=last)
    assert sorted(set(held)) == stored, "a gap in the live view"


def rest_ids(admin, web, daemon_id, after: int, upto: int | None) -> list[int]:
    ids: list[int] = []
    while True:
        params = {"after_id": after, "order": "asc", "limit": 1000}
        page = admin.get(f"{web}/api/daemons/{daemon_id}/logs", params=params, timeout=15).json()
        batch = [line["id"] for line in page["logs"] if upto is None or line["id"] <= upto]
        ids += batch
        if len(page["logs"]) < 1000 or (upto is not None and batch and batch[-1] >= upto):
            return ids
        after = page["logs"][-1]["id"]
