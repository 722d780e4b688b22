"""What every benchmark shares: its own PostgreSQL database and Redis db (the helpers of
``tests/support/services.py``), the app with migrations applied, real Celery worker processes
(``tests/support/workers.py``), the web process as the Procfile's ``web`` line starts it,
percentiles and tables, and a cleanup that runs on success, failure, Ctrl-C and SIGTERM alike:
workers and web processes stopped by pid, database dropped, Redis db released.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import psutil
import psycopg2
from flask_migrate import upgrade
from sqlalchemy.engine import make_url

from stashhog import create_app
from stashhog.auth import tokens, users
from stashhog.auth.roles import Role
from stashhog.extensions import db
from stashhog.launcher import procfile_commands
from stashhog.launcher.redis_server import free_port
from stashhog.models import Daemon
from tests.support import services
from tests.support.workers import ROOT, WorkerProcess, start_daemons_worker

DAEMON_MODULES = "tests.support.daemons"
# Loopback only: no proxy from the environment.
HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))
BENCH_USER = "bench"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class BenchServices:
    """``with BenchServices() as bench:`` gives ``bench.app``, ``bench.env`` and workers."""

    def __init__(self, stop_timeout: float = 5.0) -> None:
        self.stop_timeout = stop_timeout
        self.database_url: str | None = None
        self.redis_url: str | None = None
        self.workers: list[WorkerProcess] = []
        self.webs: list[WebProcess] = []
        self.app = None

    def __enter__(self) -> BenchServices:
        self._previous_sigterm = signal.signal(signal.SIGTERM, _sigterm_to_exit)
        try:
            self._setup()
        except BaseException:
            self._cleanup()
            raise
        return self

    def __exit__(self, *_exc) -> None:
        self._cleanup()

    def _setup(self) -> None:
        self.database_url = services.create_test_database()
        self.redis_url, _client = services.claim_redis_database()
        prefix = f"stashhog-bench-{uuid.uuid4().hex[:8]}"
        secret_key = secrets.token_urlsafe(32)  # the built-in key is refused on PostgreSQL
        self.app = create_app(
            {
                "SECRET_KEY": secret_key,
                "SQLALCHEMY_DATABASE_URI": self.database_url,
                "REDIS_URL": self.redis_url,
                "REDIS_PREFIX": prefix,
                "STOP_TIMEOUT": self.stop_timeout,
                "DAEMON_MODULES": DAEMON_MODULES,
            }
        )
        with self.app.app_context():
            upgrade(revision="head")
            # The panel asks who is calling: an operator's token for HTTP and sockets, and a
            # password for the browser tabs' login form.
            self.password = secrets.token_urlsafe(16)
            users.create_user(BENCH_USER, self.password, Role.OPERATOR)
            self.token = tokens.create_token("bench", BENCH_USER)[1]
        self.celery = self.app.extensions["celery"]
        self.env = dict(os.environ)
        self.env.update(
            DATABASE_URL=self.database_url,
            REDIS_URL=self.redis_url,
            SECRET_KEY=secret_key,
            STASHHOG_REDIS_PREFIX=prefix,
            STASHHOG_STOP_TIMEOUT=str(self.stop_timeout),
            STASHHOG_DAEMON_MODULES=DAEMON_MODULES,
            PYTHONUNBUFFERED="1",
        )
        note(f"database {make_url(self.database_url).database}, redis {self.redis_url}")

    def start_daemons_worker(self, concurrency: int, env: dict | None = None) -> WorkerProcess:
        """``celery worker -Q daemons -P prefork -c N --disable-prefetch`` (as in the Procfile),
        with ``env`` added to the benchmark's environment."""
        name = f"bench-{uuid.uuid4().hex[:6]}@%h"
        worker = start_daemons_worker({**self.env, **(env or {})}, self.celery, concurrency, name)
        self.workers.append(worker)
        note(f"worker pid {worker.pid} -c {concurrency}, log {worker.log_path}")
        return worker

    def stop_worker(self, worker: WorkerProcess) -> None:
        self.workers.remove(worker)
        _stop_worker(worker)

    def start_web(self, env: dict | None = None) -> WebProcess:
        """The Procfile's ``web`` line (gunicorn, the gevent worker of ``stashhog.webserver``)
        on a free loopback port, with ``env`` added; returns once it answers."""
        web = WebProcess({**self.env, **(env or {})})
        web.token = self.token
        self.webs.append(web)
        note(f"web pid {web.pid} at {web.url}, log {web.log_path}")
        web.wait_ready()
        return web

    def create_daemon(self, type: str, configuration: dict, name: str | None = None) -> uuid.UUID:
        with self.app.app_context():
            daemon = Daemon(
                name=name or f"bench-{uuid.uuid4().hex[:8]}",
                type=type,
                configuration=configuration,
            )
            db.session.add(daemon)
            db.session.commit()
            daemon_id = daemon.id
            db.session.remove()
        return daemon_id

    def pg_connect(self):
        """A plain autocommit psycopg2 connection, for tight polling."""
        url = make_url(self.database_url)
        conn = psycopg2.connect(
            host=url.host,
            port=url.port or 5432,
            user=url.username,
            password=url.password,
            dbname=url.database,
        )
        conn.autocommit = True
        return conn

    def _cleanup(self) -> None:
        for web in self.webs:
            web.stop()
        for worker in self.workers:
            _stop_worker(worker)
        if self.app is not None:
            with self.app.app_context():
                db.session.remove()
                db.engine.dispose()
        if self.database_url:
            services.drop_test_database(self.database_url)
            note(f"dropped {make_url(self.database_url).database}")
        if self.redis_url:
            services.release_redis_database(self.redis_url)
            note(f"released {self.redis_url}")
        signal.signal(signal.SIGTERM, self._previous_sigterm)


def _stop_worker(worker: WorkerProcess) -> None:
    """Warm shutdown by pid, then SIGKILL of exactly the pids it had if any linger."""
    pids = [worker.pid, *(child.pid for child in worker.children())]
    worker.stop()
    kill_lingering(pids, "pid")
    note(f"stopped worker pid {worker.pid}")


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


def _sigterm_to_exit(_signum, _frame) -> None:
    raise SystemExit(143)


def cpu_seconds(pids) -> dict[int, float]:
    """User + system CPU seconds of each live process in ``pids``."""
    seconds = {}
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.NoSuchProcess:
            continue
        seconds[pid] = times.user + times.system
    return seconds


def backend_pids(conn) -> list[int]:
    """The PostgreSQL server processes serving this database (other than ``conn``'s own)."""
    with conn.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        )
        return [pid for (pid,) in cursor.fetchall()]


def machine_load() -> str:
    """Load average and CPU count: other work on the machine inflates every latency."""
    one, five, _fifteen = os.getloadavg()
    return f"load average {one:.1f} (1 min) {five:.1f} (5 min) on {os.cpu_count()} CPUs"


def note(message: str) -> None:
    print(f"# {message}", file=sys.stderr, flush=True)


def poll(probe: Callable[[], Any], timeout: float, interval: float = 0.001) -> Any:
    """Call ``probe`` every ``interval`` until it returns something truthy (or None at the
    deadline)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p99 of 200 samples is the 2nd largest)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def summary_row(label: str, values_ms: Sequence[float]) -> list[str]:
    return [
        label,
        str(len(values_ms)),
        *(f"{percentile(values_ms, p):.1f}" if values_ms else "-" for p in (50, 90, 99)),
        f"{max(values_ms):.1f}" if values_ms else "-",
    ]


SUMMARY_HEADERS = ["measure", "n", "p50 ms", "p90 ms", "p99 ms", "max ms"]


def summary_figures(values_ms: Sequence[float]) -> dict[str, float | int | None]:
    """``summary_row``'s figures for ``--json``: n, p50/p90/p99/max in ms (None if empty)."""
    figures: dict[str, float | int | None] = {"n": len(values_ms)}
    for p in (50, 90, 99):
        figures[f"p{p}_ms"] = round(percentile(values_ms, p), 2) if values_ms else None
    figures["max_ms"] = round(max(values_ms), 2) if values_ms else None
    return figures


def add_json_option(parser) -> None:
    parser.add_argument(
        "--json", action="store_true", help="end with one line: a JSON object of the figures"
    )


def print_json(bench: str, figures: dict[str, Any]) -> None:
    """The last line of stdout under ``--json``: one object, named by ``bench``, with the load
    average the figures were measured under (names listed in bench/README.md)."""
    load = [round(value, 2) for value in os.getloadavg()]
    print(json.dumps({"bench": bench, "load_average": load, **figures}), flush=True)


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain-text table: first column left-aligned, the others right-aligned."""
    cells = [list(map(str, headers)), *([str(cell) for cell in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        first = row[0].ljust(widths[0])
        rest = (cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True))
        return "  ".join([first, *rest]).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(cells[0]), rule, *(line(row) for row in cells[1:])])
