"""Database wiring: Flask-SQLAlchemy, Flask-Migrate, and SQLite settings for the embedded
default (WAL and a busy timeout, since web, workers and beat write at once)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

from stashhog import models  # noqa: F401  (registers the tables on db.metadata)
from stashhog.config import ROOT
from stashhog.extensions import db, migrate

# A host cut off from PostgreSQL must get an error, not a call that hangs until TCP gives up
# (about 15 minutes): connects time out, and sent data unacknowledged for 5 s breaks the
# connection (tcp_user_timeout; keepalives find a dead idle one).
PG_CONNECT_ARGS = {
    "connect_timeout": 3,
    "tcp_user_timeout": 5000,
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 2,
}


# PostgreSQL's refusals when it has no connection slot left, and the process pool's own limit.
EXHAUSTION_MARKS = (
    "too many clients",
    "remaining connection slots are reserved",
    "too many connections for",  # a role's or a database's CONNECTION LIMIT
    "QueuePool limit",
)
# How long a caller waits in all for a connection before DatabaseBusy (retry_exhausted).
DB_BUSY_BUDGET = 10.0


class DatabaseBusy(RuntimeError):
    """No database connection could be had within the budget: PostgreSQL refused for lack
    of slots ("too many clients") or the process's pool stayed full. The cause is the last
    refusal; ``attempts`` and ``waited`` say how long it was tried."""

    def __init__(self, cause: BaseException, attempts: int, waited: float) -> None:
        first = str(cause).strip().splitlines()[0] if str(cause).strip() else repr(cause)
        super().__init__(f"database connections exhausted: {first} "
                         f"(tried {attempts} times over {waited:.1f}s)")  # fmt: skip
        self.attempts, self.waited = attempts, waited


def is_exhaustion(exc: BaseException) -> bool:
    """A refusal for lack of connections (worth retrying), not any other database error."""
    if isinstance(exc, sa.exc.TimeoutError):  # the pool's checkout timed out
        return True
    return isinstance(exc, sa.exc.OperationalError) and any(
        mark in str(exc) for mark in EXHAUSTION_MARKS
    )


def retry_exhausted(fn: Callable[..., Any], *args: Any, budget: float = DB_BUSY_BUDGET,
                    **kwargs: Any) -> Any:  # fmt: skip
    """``fn(*args, **kwargs)``, retried with backoff (0.05 s doubling to 1 s) while the
    database has no connection for it; past ``budget`` seconds, DatabaseBusy. Any other
    error is the caller's, at once."""
    started, pause, attempts = time.monotonic(), 0.05, 0
    while True:
        attempts += 1
        try:
            return fn(*args, **kwargs)
        except (sa.exc.OperationalError, sa.exc.TimeoutError) as exc:
            waited = time.monotonic() - started
            if not is_exhaustion(exc):
                raise
            if waited + pause > budget:
                raise DatabaseBusy(exc, attempts, waited) from exc
            time.sleep(pause)
            pause = min(1.0, pause * 2)


def init_app(app: Flask) -> None:
    uri = app.config["SQLALCHEMY_DATABASE_URI"]
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {}
    elif uri.startswith("postgresql"):
        options = app.config["SQLALCHEMY_ENGINE_OPTIONS"] = dict(
            app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {}
        )
        options["connect_args"] = {**PG_CONNECT_ARGS, **options.get("connect_args", {})}
    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"))
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            event.listen(db.engine, "connect", _configure_sqlite)


def _configure_sqlite(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def dispose_engine_after_fork(app: Flask) -> None:
    """A forked child must not share its parent's pooled connections."""
    with app.app_context():
        db.engine.dispose(close=False)


class ConnectionSlots:
    """At most ``count`` database connections open at once across all the processes of one
    daemons worker (its prefork children): a connection holds a slot, a POSIX record lock
    on one byte of an unlinked file the worker made before forking, from its connect to its
    close. The kernel drops the locks of a process that dies, so a child killed mid-call
    leaks none (and an unlinked file leaves nothing to clean up). A slot not had within the
    timeout raises ``sqlalchemy.exc.TimeoutError`` (``retry_exhausted`` retries it, then
    DatabaseBusy)."""

    def __init__(self, count: int) -> None:
        self.count = count
        self._file = tempfile.TemporaryFile()  # inherited by the forked children
        self._pid = os.getpid()
        self._held: set[int] = set()  # record locks are per process: threads must not share
        self._lock = threading.Lock()

    def acquire(self, timeout: float) -> int:
        deadline, pause = time.monotonic() + timeout, 0.002
        while (slot := self._try()) is None:
            if time.monotonic() >= deadline:
                raise sa.exc.TimeoutError(
                    f"QueuePool limit: all {self.count} connection slots of this worker in use"
                    f" for {timeout:g}s"
                )
            time.sleep(pause)
            pause = min(0.05, pause * 2)
        return slot

    def _try(self) -> int | None:
        with self._lock:
            if self._pid != os.getpid():  # a forked child holds none of its parent's
                self._pid, self._held = os.getpid(), set()
            first = random.randrange(self.count)  # spread the children over the slots
            for n in (*range(first, self.count), *range(first)):
                if n in self._held:
                    continue
                try:
                    fcntl.lockf(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, n)
                except OSError:  # EAGAIN or EACCES: another process holds it
                    continue
                self._held.add(n)
                return n
        return None

    def release(self, slot: int) -> None:
        with self._lock:
            if slot in self._held:
                fcntl.lockf(self._file, fcntl.LOCK_UN, 1, slot)
                self._held.discard(slot)


def _hold_slots(engine: sa.engine.Engine, slots: ConnectionSlots, timeout: float) -> None:
    @event.listens_for(engine, "do_connect")
    def connect_in_a_slot(dialect, record, cargs, cparams):
        slot = slots.acquire(timeout)
        try:
            connection = dialect.connect(*cargs, **cparams)
        except BaseException:
            slots.release(slot)
            raise
        record.info["slot"] = slot
        return connection

    @event.listens_for(engine, "close")
    def free_the_slot(_dbapi_connection, record):
        slot = record.info.pop("slot", None)
        if slot is not None:
            slots.release(slot)


def use_worker_pool(app: Flask, *, pool_size: int | None, timeout: float = 1.0,
                    slots: ConnectionSlots | None = None) -> None:  # fmt: skip
    """Replace the process's engine with one for a daemons worker (PostgreSQL only).

    ``pool_size=None``: no pool (NullPool), for a prefork child running one daemon: a
    connection lives for one call, so 200 idle children hold none (a pooled idle connection
    each would take 200 of PostgreSQL's 100 slots). Otherwise a pool of exactly that many
    connections shared by the process's threads, and a checkout waits at most ``timeout``
    (then ``sqlalchemy.exc.TimeoutError``, which ``retry_exhausted`` retries): a bound, never
    an unbounded queue. ``slots``: the bound shared with the worker's other processes. The
    parent's pooled connections are left to the parent (fork)."""
    with app.app_context():
        old = db.engine
        if old.dialect.name != "postgresql":
            old.dispose(close=False)
            return
        options = dict(app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
        if pool_size is None:
            options.pop("pool_pre_ping", None)  # a fresh connection each time: nothing to ping
            options["poolclass"] = NullPool
        else:
            options.update(pool_size=pool_size, max_overflow=0, pool_timeout=timeout)
        # Flask-SQLAlchemy makes its engines at init_app; its mapping is where it reads them.
        engine = sa.create_engine(old.url, **options)
        if slots is not None:
            _hold_slots(engine, slots, timeout)
        db.engines[None] = engine  # type: ignore[index]
        old.dispose(close=False)


class HeldConnection:
    """A connection a prefork child keeps across a few calls that follow each other.

    A prefork child has no pool (``use_worker_pool``): every call connects, and a new
    backend's first statements load its catalog caches (7-10 ms here). Under a log burst
    that was 20-30 ms of each 230 ms batch, and a stop's last log lines and final status
    were two connects. ``run`` keeps the connection after a call only while ``keep()`` says
    another follows at once, and whoever makes the last call ``take``s it and closes it, so
    a running daemon still holds none between calls. With a pool (threads workers, the web)
    it holds nothing: a pooled connection is warm, and the pool's few are every daemon's.
    Its calls come one at a time; the lock covers connecting and handing it over."""

    def __init__(self) -> None:
        self._conn: Connection | None = None
        self._lock = threading.Lock()

    @staticmethod
    def applies() -> bool:
        return isinstance(db.engine.pool, NullPool)

    def run(self, fn: Callable[..., Any], *args: Any, keep: Callable[[], bool]) -> Any:
        """``fn(*args, conn=...)`` on the held connection (connecting if none is), or
        ``fn(*args)`` where it does not apply."""
        if not self.applies():
            return fn(*args)
        with self._lock:
            if self._conn is None:
                self._conn = db.engine.connect()
            conn = self._conn
        try:
            return fn(*args, conn=conn)
        except BaseException:
            self.close()  # whatever failed, the next call starts on a fresh connection
            raise
        finally:
            if not keep():
                self.close()

    def take(self) -> Connection | None:
        """The held connection, now the caller's to close (None when none is held)."""
        with self._lock:
            conn, self._conn = self._conn, None
        return conn

    def close(self) -> None:
        conn = self.take()
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()
