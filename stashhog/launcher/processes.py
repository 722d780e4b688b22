"""The launcher's children: spawning them in their own process groups, relaying their output,
and signalling or killing them, grandchildren included.

Each child is the leader of its own process group and gets SIGTERM if the launcher dies, even
by SIGKILL (Linux only).
"""

from __future__ import annotations

import ctypes
import os
import selectors
import signal
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime

import psutil
from honcho.colour import get_colours
from honcho.printer import Message, Printer

from stashhog.config import ROOT

PR_SET_PDEATHSIG = 1
# Lines of each child's output kept to explain an exit nobody asked for.
LAST_LINES = 20
LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


@dataclass
class Child:
    """A process we started, leader of its own process group; its output is line-buffered,
    and its last ``LAST_LINES`` lines are kept."""

    name: str
    proc: subprocess.Popen
    colour: str | None = None
    pending: bytes = b""
    last_lines: deque[str] = field(default_factory=lambda: deque(maxlen=LAST_LINES))

    def exit_report(self) -> list[str]:
        """Why the launcher stops everything: this child's name, exit code and last lines."""
        code = self.proc.returncode
        how = f"exit code {code}"
        if code < 0:
            how += f" ({signal.Signals(-code).name})"
        header = f"{self.name} (pid {self.proc.pid}) exited on its own with {how}"
        if not self.last_lines:
            return [f"{header}; it printed nothing"]
        return [f"{header}; its last lines:", *(f"  {line}" for line in self.last_lines)]


class Output:
    """Every child's output on our stdout, one prefixed line at a time (honcho's format)."""

    def __init__(self) -> None:
        self.printer = Printer(sys.stdout, width=10)
        self.colours = get_colours()
        self.selector = selectors.DefaultSelector()

    def say(self, text: str, name: str = "launcher") -> None:
        self.printer.write(Message("line", text, datetime.now(), name, None))

    def watch(self, child: Child) -> None:
        child.colour = next(self.colours)
        os.set_blocking(child.proc.stdout.fileno(), False)
        self.selector.register(child.proc.stdout, selectors.EVENT_READ, child)

    def pump(self, timeout: float) -> None:
        """Print what the children wrote, waiting at most ``timeout`` seconds for it."""
        if not self.selector.get_map():
            time.sleep(timeout)
            return
        for key, _ in self.selector.select(timeout):
            self._read(key.data)

    def drain(self) -> None:
        """Print what is left in the pipes; bounded, in case a stray process holds one open."""
        for _ in range(1000):
            if not self.selector.get_map() or not self.selector.select(0):
                return
            self.pump(0)

    def _read(self, child: Child) -> None:
        try:
            data = os.read(child.proc.stdout.fileno(), 65536)
        except BlockingIOError:
            return
        lines = (child.pending + data).split(b"\n")
        child.pending = lines.pop() if data else b""
        if not data:
            self.selector.unregister(child.proc.stdout)
            child.proc.stdout.close()
        child.last_lines.extend(line.decode(errors="replace") for line in lines if line)
        if any(lines):
            message = Message("line", b"\n".join(lines), datetime.now(), child.name, child.colour)
            self.printer.write(message)


def _die_with_parent(parent_pid: int):
    """preexec_fn: SIGTERM this child if the launcher dies, even by SIGKILL (Linux only)."""
    if LIBC is None:
        return None

    def preexec() -> None:
        LIBC.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM))
        if os.getppid() != parent_pid:  # the launcher died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


def spawn(name: str, argv: list[str], env: dict[str, str], output: Output) -> Child:
    proc = subprocess.Popen(
        argv,
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=_die_with_parent(os.getpid()),
    )
    child = Child(name, proc)
    output.watch(child)
    return child


def spawn_procfile_line(name: str, command: str, env: dict[str, str], output: Output) -> Child:
    # The shell expands ${VAR:-default}; ``exec`` makes the program itself the group leader,
    # so the parent-death signal reaches it rather than an idle shell.
    return spawn(name, ["/bin/sh", "-c", f"exec {command}"], env, output)


def running(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def signal_group(child: Child, signum: int) -> None:
    # A reaped leader's pid may be reused; its stragglers are killed from the psutil snapshot.
    if child.proc.poll() is not None:
        return
    try:
        os.killpg(child.proc.pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def process_tree(children: list[Child]) -> list[psutil.Process]:
    tree = []
    for child in children:
        try:
            leader = psutil.Process(child.proc.pid)
            tree += [leader, *leader.children(recursive=True)]
        except psutil.NoSuchProcess:
            pass
    return tree
