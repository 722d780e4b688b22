"""Health polled by many clients at once never freezes the web process.

Every open page polls ``/api/health``; each poll used to broadcast a worker inspection from its
own request thread, and 40 clients left every thread blocked in kombu's broker pool for good.
Here the real web process (the Procfile's ``web`` line, gunicorn) is flooded from 50 threads;
afterwards it must still answer ``/api/daemons`` within a second, and health itself.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

from stashhog.auth.roles import Role
from stashhog.launcher import procfile_commands
from tests.support.workers import end_process

ROOT = Path(__file__).resolve().parents[1]
CLIENTS = 50
FLOOD_SECONDS = 5.0
# No proxy: these requests go to loopback only.
HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def get(url: str, timeout: float, token: str | None = None) -> int:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with HTTP.open(request, timeout=timeout) as reply:
            reply.read()
            return reply.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:  # refused, reset or timed out
        return 0


@pytest.fixture
def web_url(app, worker_env, tmp_path):
    """The Procfile's ``web`` process on a free port, on the session's database and Redis."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    bin_dir = str(Path(sys.executable).parent)  # gunicorn, as the launcher finds it
    env = dict(worker_env, PORT=str(port), WEB_WORKERS="1")
    env["PATH"] = os.pathsep.join([bin_dir, env.get("PATH", os.defpath)])
    log_path = tmp_path / "web.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            ["/bin/sh", "-c", f"exec {procfile_commands()['web']}"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while get(f"{url}/api/health/live", timeout=2) != 200:
            assert proc.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        yield url
    finally:
        end_process(proc)


def flood(url: str, until: float, answers: Counter, lock: threading.Lock) -> None:
    while time.monotonic() < until:
        status = get(url, timeout=5)
        with lock:
            answers[status] += 1


def test_health_flooded_from_50_clients_leaves_the_web_process_answering(
    web_url, daemons_worker, jobs_worker, role_tokens
):
    answers: Counter = Counter()
    lock = threading.Lock()
    until = time.monotonic() + FLOOD_SECONDS
    clients = [
        threading.Thread(target=flood, args=(f"{web_url}/api/health", until, answers, lock))
        for _ in range(CLIENTS)
    ]
    for client in clients:
        client.start()
    for client in clients:
        client.join(FLOOD_SECONDS + 10)

    started = time.monotonic()
    status = get(f"{web_url}/api/daemons", timeout=1.0, token=role_tokens[Role.VIEWER])
    elapsed = time.monotonic() - started
    print(f"{CLIENTS} clients, {FLOOD_SECONDS}s: health answers {dict(answers)}; ", end="")
    print(f"/api/daemons then answered {status} in {elapsed * 1000:.0f} ms")
    assert status == 200 and elapsed < 1.0, (status, elapsed, answers)
    assert get(f"{web_url}/api/health", timeout=3) == 200
    assert get(f"{web_url}/api/health/live", timeout=1) == 200
    # Every poll got an answer (the workers serve both queues: 200), none timed out.
    assert set(answers) == {200} and answers[200] >= CLIENTS, answers
