"""What every benchmark shares: its own PostgreSQL database and Redis db (the helpers of
``tests/support/services.py``), the app with migrations applied, real Celery worker processes
(``tests/support/workers.py``), the web process as the Procfile's ``web`` line starts it,
percentiles and tables, and a cleanup that runs on success, failure, Ctrl-C and SIGTERM alike:
workers and web processes stopped by pid, database dropped, Redis db released.
"""

from __future__ import annotations

import os
import secrets
import signal
import uuid

import psycopg2
from flask_migrate import upgrade
from sqlalchemy.engine import make_url

# Every script imports its helpers from here: the figures and processes are re-exported.
from bench.figures import (
    SUMMARY_HEADERS,
    add_json_option,
    backend_pids,
    cpu_seconds,
    machine_load,
    note,
    percentile,
    poll,
    print_json,
    summary_figures,
    summary_row,
    table,
)
from bench.processes import HTTP, Beat, WebProcess, kill_lingering
from stashhog import create_app
from stashhog.auth import tokens, users
from stashhog.auth.roles import Role
from stashhog.extensions import db
from stashhog.models import Daemon
from tests.support import services
from tests.support.workers import WorkerProcess, start_daemons_worker

__all__ = [
    "HTTP",
    "SUMMARY_HEADERS",
    "BenchServices",
    "WebProcess",
    "add_json_option",
    "backend_pids",
    "bearer",
    "cpu_seconds",
    "kill_lingering",
    "machine_load",
    "note",
    "percentile",
    "poll",
    "print_json",
    "summary_figures",
    "summary_row",
    "table",
]

DAEMON_MODULES = "tests.support.daemons"
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
        self.beat: Beat | None = None
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

    def start_daemons_worker(
        self, concurrency: int, env: dict | None = None, pool: str = "prefork"
    ) -> WorkerProcess:
        """``celery worker -Q daemons -P <pool> -c N --disable-prefetch`` (as in the
        Procfile), with ``env`` added to the benchmark's environment."""
        name = f"bench-{uuid.uuid4().hex[:6]}@%h"
        env = {**self.env, **(env or {})}
        worker = start_daemons_worker(env, self.celery, concurrency, name, pool=pool)
        self.workers.append(worker)
        note(f"worker pid {worker.pid} -P {pool} -c {concurrency}, log {worker.log_path}")
        return worker

    def start_supervision(self) -> None:
        """The Procfile's ``supervisor`` worker (solo) and ``beat``: the reconciler's passes
        every RECONCILE_INTERVAL, as in production (a killed worker's daemons come back)."""
        supervisor = WorkerProcess(self.env, "supervisor", "-P", "solo")
        self.workers.append(supervisor)
        supervisor.wait_ready(self.celery)
        self.beat = Beat(self.env)
        note(f"supervisor worker pid {supervisor.pid}, beat pid {self.beat.pid}")

    def create_daemons(self, type: str, configuration: dict, count: int) -> list[uuid.UUID]:
        """``count`` daemon rows in one transaction (names ``bench-<n>-…``)."""
        with self.app.app_context():
            tag = uuid.uuid4().hex[:6]
            daemons = [
                Daemon(name=f"bench-{number:04d}-{tag}", type=type, configuration=configuration)
                for number in range(count)
            ]
            db.session.add_all(daemons)
            db.session.commit()
            ids = [daemon.id for daemon in daemons]
            db.session.remove()
        return ids

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
        if self.beat is not None:
            self.beat.stop()
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


def _sigterm_to_exit(_signum, _frame) -> None:
    raise SystemExit(143)
