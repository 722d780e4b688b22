"""A private StashHog cluster for fault injection: its own Redis server process (so it can be
restarted), its own PostgreSQL database, beat, a supervisor worker and daemons workers."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import redis
from flask_migrate import upgrade

from stashhog import create_app
from stashhog.extensions import db
from tests.support import services
from tests.support.workers import ROOT, WorkerProcess, default_pool, start_daemons_worker


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """A real redis-server on a loopback port, stopped and started by the test."""

    def __init__(self, port: int) -> None:
        self.port, self.proc = port, None
        self.url = f"redis://127.0.0.1:{port}/0"

    def start(self) -> None:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                   "--save", "", "--appendonly", "no"]  # fmt: skip
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, start_new_session=True)
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.2)
        for _ in range(100):
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("private redis-server did not start")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def restart(self) -> None:
        self.stop()
        self.start()


class Cluster:
    """``pool``: the daemons workers' pool (default: STASHHOG_TEST_DAEMON_POOL, else
    prefork), with ``concurrency`` slots each."""

    def __init__(self, tmp: Path, daemon_modules: str, pool: str | None = None,
                 concurrency: int = 2) -> None:  # fmt: skip
        self.tmp = tmp
        self.pool, self.concurrency = pool or default_pool(), concurrency
        self.redis = RedisServer(free_port())
        self.database_url = services.create_test_database()
        self.env = dict(os.environ)
        self.env.update(
            DATABASE_URL=self.database_url,
            REDIS_URL=self.redis.url,
            SECRET_KEY=services.TEST_SECRET_KEY,
            STASHHOG_REDIS_PREFIX=f"chaos-{uuid.uuid4().hex[:6]}",
            STASHHOG_STOP_TIMEOUT="3",
            STASHHOG_DAEMON_MODULES=daemon_modules,
            PYTHONUNBUFFERED="1",
        )
        self.daemon_workers: list[WorkerProcess] = []
        self.others: list[WorkerProcess] = []
        self.beat: subprocess.Popen | None = None

    def config(self) -> dict:
        return {
            "SQLALCHEMY_DATABASE_URI": self.database_url,
            "REDIS_URL": self.redis.url,
            "SECRET_KEY": services.TEST_SECRET_KEY,
            "REDIS_PREFIX": self.env["STASHHOG_REDIS_PREFIX"],
            "STOP_TIMEOUT": 3.0,
            "DAEMON_MODULES": self.env["STASHHOG_DAEMON_MODULES"],
        }

    def start(self, celery_app, daemon_workers: int = 2) -> None:
        self.redis.start()
        supervisor = WorkerProcess(self.env, "supervisor", "-P", "solo")
        self.others.append(supervisor)
        for _ in range(daemon_workers):
            self.add_daemons_worker(celery_app)
        supervisor.wait_ready(celery_app)
        log = open(ROOT / "tests" / "artifacts" / "chaos-beat.log", "wb")  # noqa: SIM115
        self.beat = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "app.celery", "beat",
             "-s", str(self.tmp / "beat-schedule"), "--loglevel", "INFO"],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip

    def add_daemons_worker(self, celery_app) -> WorkerProcess:
        worker = start_daemons_worker(
            self.env, celery_app, concurrency=self.concurrency, pool=self.pool
        )
        self.daemon_workers.append(worker)
        return worker

    def worker_named(self, hostname: str | None) -> WorkerProcess | None:
        return next((w for w in self.daemon_workers if w.hostname() == hostname), None)

    def signal_tree(self, worker: WorkerProcess, signum: int) -> None:
        """Send ``signum`` to the worker's main process and every pool child."""
        for pid in [worker.pid, *(child.pid for child in worker.children())]:
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

    def shutdown(self) -> None:
        if self.beat and self.beat.poll() is None:
            self.beat.send_signal(signal.SIGTERM)
            self.beat.wait(10)
        for worker in [*self.daemon_workers, *self.others]:
            self.signal_tree(worker, signal.SIGCONT)
            if worker.proc.poll() is None:
                worker.kill()
            worker.log.close()
        self.redis.stop()
        services.drop_test_database(self.database_url)


@contextlib.contextmanager
def private_cluster(tmp: Path, **options):
    """A Cluster of tests/support/daemons.py's daemons (skipped without PostgreSQL), shut
    down after the block."""
    try:
        built = Cluster(tmp, "tests.support.daemons", **options)
    except Exception as exc:
        services.unavailable("PostgreSQL (TEST_DATABASE_URL)", exc)
    try:
        yield built
    finally:
        built.shutdown()


@contextlib.contextmanager
def cluster_app(cluster: Cluster, daemon_workers: int = 2):
    """The app of ``cluster``'s database (migrated), with the cluster started, in an app
    context for the block."""
    app = create_app({"TESTING": True, **cluster.config()})
    cluster.redis.start()  # migrations first; Cluster.start() restarts it cleanly
    with app.app_context():
        upgrade(revision="head")
    cluster.redis.stop()
    cluster.start(app.extensions["celery"], daemon_workers)
    with app.app_context():
        yield app
        db.session.remove()
