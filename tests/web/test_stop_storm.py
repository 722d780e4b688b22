"""A storm of stops from the web: each sends a revoke, and the revokes must not take Celery's
broker pool (its broadcast holds one pooled connection and waits for a second, so a few dozen
at once froze the web process the way health polls did, ARCHITECTURE §6)."""

from __future__ import annotations

import json
import threading
import urllib.request
import uuid

from stashhog.auth.roles import Role
from tests.web.test_web_server import NO_PROXY, WebServer, get

STOPS = 60


def post(url: str, token: str, timeout: float = 20.0) -> int:
    request = urllib.request.Request(url, method="POST", data=b"")
    request.add_header("Authorization", f"Bearer {token}")
    try:
        with NO_PROXY.open(request, timeout=timeout) as reply:
            json.loads(reply.read())
            return reply.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def test_many_concurrent_stops_leave_the_web_answering(app, worker_env, role_tokens, make_daemon):
    # Rows that look like running daemons (no worker runs them): each stop sends a revoke.
    daemon_ids = [
        make_daemon(
            name=f"storm-{number}",
            status="RUNNING",
            desired_state="RUNNING",
            generation=1,
            task_id=str(uuid.uuid4()),
        ).id
        for number in range(STOPS)
    ]
    token = role_tokens[Role.OPERATOR]
    server = WebServer(worker_env)
    try:
        server.wait_ready()
        statuses: list[int] = []
        threads = [
            threading.Thread(
                target=lambda d=daemon_id: statuses.append(
                    post(f"{server.url}/api/daemons/{d}/stop", token)
                )
            )
            for daemon_id in daemon_ids
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert statuses.count(200) == STOPS, statuses
        status, _body, took = get(server.url + "/api/daemons", token=token)
        assert status == 200 and took < 1.0, f"{status} in {took:.2f}s"
    finally:
        server.stop()
