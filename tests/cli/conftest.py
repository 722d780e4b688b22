"""Fixtures for the ``flask daemons …`` tests: the commands in-process, and ``logs -f`` in a
subprocess read line by line."""

from __future__ import annotations

import queue
import signal
import subprocess
import sys
import threading
import time

import pytest

from tests.support.workers import ROOT


@pytest.fixture
def cli(app):
    runner = app.test_cli_runner()

    def invoke(*args: str):
        return runner.invoke(args=["daemons", *args])

    return invoke


class FollowProcess:
    """``flask daemons logs -f`` in a subprocess; its stdout read line by line."""

    def __init__(self, env: dict, *args: str) -> None:
        command = [sys.executable, "-m", "flask", "--app", "app", "daemons", "logs", "-f", *args]
        self.proc = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.lines: list[str] = []
        self.stderr = ""
        self._queue: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))

    def expect(self, text: str, timeout: float = 20.0) -> None:
        """Wait until a printed line contains ``text``."""
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            remaining = deadline - time.monotonic()
            if self.proc.poll() is not None and self._queue.empty():
                raise AssertionError(f"exited {self.proc.returncode}: {self.proc.stderr.read()}")
            if remaining <= 0:
                raise AssertionError(f"{text!r} not printed; got {self.lines}")
            try:
                self.lines.append(self._queue.get(timeout=min(remaining, 0.5)))
            except queue.Empty:
                pass

    def interrupt(self) -> int:
        """Ctrl-C; returns the exit code."""
        self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(10)
        self.stderr = self.proc.stderr.read()
        time.sleep(0.2)  # let the reader thread drain the pipe
        while not self._queue.empty():
            self.lines.append(self._queue.get())
        return code

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def follow(worker_env):
    started: list[FollowProcess] = []

    def start(*args: str) -> FollowProcess:
        started.append(FollowProcess(worker_env, *args))
        return started[-1]

    yield start
    for process in started:
        process.stop()
