"""Processes a benchmark starts besides its workers: the web process as the Procfile's ``web``
line starts it, celery beat, the USS of a process tree, and the kill of exactly the pids that
outlive a graceful stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import psutil

from bench.figures import note
from stashhog.launcher import procfile_commands
from stashhog.launcher.redis_server import free_port
from tests.support.workers import ROOT

# Loopback only: no proxy from the environment.
HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def kill_lingering(pids: list[int], what: str) -> None:
    """SIGKILL those of ``pids`` (ours, taken before a graceful stop) still alive."""
    for pid in pids:
        try:
            process = psutil.Process(pid)
            if process.status() != psutil.STATUS_ZOMBIE:
                process.kill()
                note(f"killed lingering {what} {pid}")
        except psutil.NoSuchProcess:
            pass


class WebProcess:
    """``/bin/sh -c "exec <web line>"``: gunicorn's master is the pid, its workers children."""

    def __init__(self, env: dict[str, str]) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.ws_url = f"ws://127.0.0.1:{port}/api/daemons/ws"
        self.log_path = ROOT / "tests" / "artifacts" / f"web-bench-{uuid.uuid4().hex[:6]}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        bin_dir = str(Path(sys.executable).parent)  # gunicorn, as the launcher finds it
        env = env | {"PORT": str(port), "WEB_WORKERS": env.get("WEB_WORKERS", "1")}
        env["PATH"] = os.pathsep.join([bin_dir, env.get("PATH", os.defpath)])
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                ["/bin/sh", "-c", f"exec {procfile_commands()['web']}"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def processes(self) -> list[psutil.Process]:
        """The master and its workers (empty once it exited)."""
        try:
            master = psutil.Process(self.pid)
            return [master, *master.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"web process exited; see {self.log_path}")
            try:
                with HTTP.open(f"{self.url}/api/health/live", timeout=2) as reply:
                    if reply.status == 200:
                        return
            except OSError:  # not listening yet (HTTPError included)
                pass
            time.sleep(0.2)
        raise TimeoutError(f"web process did not answer; see {self.log_path}")

    def stop(self) -> None:
        """SIGTERM to the master (gunicorn's graceful stop), then SIGKILL of exactly the pids
        it had if any linger."""
        if self.proc.poll() is not None:
            return
        pids = [process.pid for process in self.processes()]
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            pass
        kill_lingering(pids, "web pid")
        self.proc.wait(5)
        note(f"stopped web pid {self.pid}")


class Beat:
    """``celery beat`` (the Procfile's line), its schedule file in a folder of its own."""

    def __init__(self, env: dict[str, str]) -> None:
        self.folder = tempfile.TemporaryDirectory(prefix="stashhog-bench-beat-")
        self.log_path = ROOT / "tests" / "artifacts" / f"beat-bench-{uuid.uuid4().hex[:6]}.log"
        schedule = str(Path(self.folder.name) / "schedule")
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "app.celery", "beat",
                 "-s", schedule, "--loglevel", "INFO"],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                kill_lingering([self.pid], "beat pid")
                self.proc.wait(5)
        self.folder.cleanup()


def tree_uss(pid: int) -> tuple[float, int]:
    """USS (bytes: memory only these processes hold) of ``pid`` and its descendants, and how
    many processes that is (psutil reads each one's smaps: ~10 ms a process)."""
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0, 0
    total, count = 0.0, 0
    for process in processes:
        try:
            total += process.memory_full_info().uss
            count += 1
        except psutil.NoSuchProcess:
            pass
    return total, count
