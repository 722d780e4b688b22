"""Real Celery worker processes (and other Procfile processes) started by tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import kombu.exceptions
import psutil
import redis

ROOT = Path(__file__).resolve().parents[2]
CELERY = [sys.executable, "-m", "celery", "-A", "app.celery"]


def end_process(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """SIGTERM ``proc`` (one we started), then SIGKILL if it has not exited in ``timeout``."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


class WorkerProcess:
    """One ``celery worker`` subprocess; stopped by pid, children included."""

    def __init__(self, env: dict[str, str], queues: str, *extra: str, name: str | None = None):
        self.name = name or f"{queues.replace(',', '-')}-{uuid.uuid4().hex[:6]}@%h"
        self.log_path = ROOT / "tests" / "artifacts" / f"worker-{self.name.split('@')[0]}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        command = [*CELERY, "worker", "-Q", queues, "-n", self.name, "--loglevel", "INFO", *extra]
        self.log = open(self.log_path, "wb")  # noqa: SIM115  (closed in stop())
        self.proc = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def children(self) -> list[psutil.Process]:
        try:
            return psutil.Process(self.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def wait_ready(self, celery_app, timeout: float = 30.0) -> None:
        """Wait until the worker answers a broadcast ping under its own node name."""
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited early; see {self.log_path}")
            try:
                replies = celery_app.control.ping(timeout=0.5) or []
            except (OSError, redis.RedisError, kombu.exceptions.OperationalError) as exc:
                # A broker connection dropped under us (seen once as the host suite's second
                # cluster came up): a new one is taken on the next try.
                last_error = exc
                time.sleep(0.2)
                continue
            node = self.hostname()
            if any(node in reply for reply in replies):
                return
        raise TimeoutError(f"worker {self.name} not ready ({last_error!r}); see {self.log_path}")

    def hostname(self) -> str:
        return self.name.replace("%h", os.uname().nodename)

    def stop(self, timeout: float = 15.0) -> None:
        """Warm shutdown (SIGTERM), then SIGKILL of the whole group if it lingers."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()

    def kill(self) -> None:
        """kill -9 of the main process and its pool children."""
        victims = [self.proc.pid, *(child.pid for child in self.children())]
        for pid in victims:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(10)


# The daemons worker's pool for the chaos suite and others that take it from the
# environment: "prefork" (default) or "threads" (the high-density mode).
POOL_VARIABLE = "STASHHOG_TEST_DAEMON_POOL"


def default_pool() -> str:
    return os.environ.get(POOL_VARIABLE) or "prefork"


def start_daemons_worker(
    env, celery_app, concurrency: int = 4, name: str | None = None, pool: str = "prefork"
):
    """A daemons worker as the Procfile starts it, on ``pool`` (prefork or threads)."""
    worker = WorkerProcess(
        env, "daemons", "-P", pool, "-c", str(concurrency), "--disable-prefetch", name=name
    )
    worker.wait_ready(celery_app)
    return worker


def start_jobs_worker(env, celery_app, concurrency: int = 2):
    worker = WorkerProcess(env, "jobs", "-P", "prefork", "-c", str(concurrency))
    worker.wait_ready(celery_app)
    return worker
