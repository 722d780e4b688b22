"""Fault 5: the web's host cut off from Redis. The web process (gunicorn, as the Procfile runs
it) lives on the "ctl" host, reached by the test through a veth of its own; a daemon keeps
running on a worker host, which still reaches both services, and keeps logging.

While the web's host has no Redis: ``/api/health`` is 503 naming Redis (the panel's banner
reads it), every command answers 503, and nothing is half-applied (the database is as it
was). After the heal: health is 200 again, commands work, and a live viewer's socket, which
stays open throughout (not dropped by the burst that arrives at the heal), misses nothing:
the lines it was sent, plus what it re-reads from REST when the relay says ``resync`` (as the
panel's log view does), are every line stored.
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
# Long enough for every check below, and for a burst after the heal larger than a viewer's
# queue (the relay's subscriber connection survives a link that is down: what Redis sent
# meanwhile is retransmitted at once, ~10 messages a second of cut, 256 queued at most).
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
    """A live viewer on the socket, following one daemon: every message, in order."""

    def __init__(self, base: str, token_headers: dict, daemon_id) -> None:
        url = base.replace("http://", "ws://") + "/api/daemons/ws"
        self.ws = simple_websocket.Client.connect(url, headers=token_headers)
        self.messages: list[dict] = []
        self.ws.send(json.dumps({"command": "subscribe", "daemon_id": str(daemon_id)}))
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        try:
            while True:
                self.messages.append(json.loads(self.ws.receive()))
        except (simple_websocket.ConnectionClosed, OSError):
            pass

    def line_ids(self) -> list[int]:
        return [line["id"] for m in list(self.messages) if m.get("type") == "daemon_log"
                for line in m["lines"]]  # fmt: skip


def test_5_web_host_cut_off_from_redis(cluster, hosts_app, web, admin):
    running = made_daemon("web-fault-running", running=True)
    stopped = made_daemon("web-fault-stopped", running=False)
    viewer = Viewer(web, dict(admin.headers), running)
    assert eventually(lambda: len(viewer.line_ids()) > 20, timeout=15), viewer.messages[:3]
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
    assert viewer.reader.is_alive(), "the relay dropped the viewer after the heal"
    resyncs = sum(m.get("type") == "resync" for m in viewer.messages)
    print(f"fault 5: {len(viewer.line_ids())} lines live, {resyncs} resync(s)")

    stop = admin.post(f"{web}/api/daemons/{running}/stop?wait=10", timeout=20)
    assert stop.status_code == 200, stop.text
    viewer.ws.close()
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
    """What the page holds (lines sent, plus after each ``resync`` what REST gives after the
    last line it had) is every stored line from its first to its last."""
    held: list[int] = []
    for message in list(viewer.messages):
        if message.get("type") == "daemon_log":
            held += [line["id"] for line in message["lines"]]
        elif message.get("type") == "resync" and held:
            held += rest_ids(admin, web, daemon_id, after=held[-1], upto=None)
    first, last = held[0], max(held)
    stored = rest_ids(admin, web, daemon_id, after=first - 1, upto=last)
    assert sorted(set(held) & set(range(first, last + 1))) == stored, "a gap in the live view"


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
