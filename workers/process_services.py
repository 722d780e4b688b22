"""What the daemon instances of one worker process share, in both pools (one code path: a
prefork child simply has one instance, a threads worker a thousand):

- one control subscriber (``ControlHub``: one Redis pub/sub connection for every daemon);
- one lease renewer (``LeaseRenewer``: one pipeline per interval for every lease);
- one bounded executor for database calls (``call_db``), sized to the process's SQLAlchemy
  pool (``stashhog.database.use_worker_pool``): a threads worker holds at most
  ``THREADS_DB_CONNECTIONS`` connections whatever the number of daemons, a prefork child
  none while idle; a refusal for lack of connections is retried with backoff, then raises
  ``stashhog.database.DatabaseBusy``;
- one small executor for the instances' own Redis calls (release, shutdown mark);
- the database liveness of the worker: any call of any of its processes that reached
  PostgreSQL proves it to every instance (DB_GRACE: a host cut off from the database gives
  its leases up), so 200 prefork children heartbeating do not also probe once a second each
  (shared memory made before the fork); at most one instance of a process probes at a time.

The worker's hooks (workers/signals.py) say which pool this is before any task runs.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.sharedctypes import RawValue
from typing import Any

from flask import Flask
from sqlalchemy import event

from stashhog.control import control_channel
from stashhog.database import ConnectionSlots, retry_exhausted, use_worker_pool
from stashhog.events import get_redis, key
from stashhog.extensions import db
from workers.control_watcher import ControlHub
from workers.lease_renewer import LeaseRenewer

logger = logging.getLogger(__name__)
PREFORK, THREADS = "prefork", "threads"
# Database threads of a process: a prefork child runs one daemon; a threads worker shares
# these among all of its daemons (and the pool has a few more for the task threads' own
# claim and final writes).
PREFORK_DB_THREADS = 2
THREADS_DB_THREADS = 8
THREADS_DB_CONNECTIONS = 12
# Connections open at once across all the children of one prefork worker, however many (200
# children at their start claimed 97 of PostgreSQL's 100 slots without it).
PREFORK_DB_CONNECTIONS = 32
COUNTERS_SECONDS = 30  # how long a process's counters outlive it in Redis

_pool = PREFORK  # set by the worker's hooks (workers/signals.py); solo counts as prefork
_slots: ConnectionSlots | None = None  # a prefork worker's, made before the fork
_db_seen = None  # when any process of the worker last reached the database (monotonic)
_lock = threading.Lock()
_current: ProcessServices | None = None


def pool_kind() -> str:
    return _pool


def worker_starting(app: Flask, pool: str) -> None:
    """A daemons worker's main process, before its pool starts: a threads worker runs every
    daemon in this process, so its engine becomes the bounded shared pool now."""
    global _pool, _slots, _db_seen
    _pool = THREADS if pool == THREADS else PREFORK
    # CLOCK_MONOTONIC is the machine's: the children's readings compare.
    _db_seen = RawValue("d", time.monotonic())
    if _pool == THREADS:
        use_worker_pool(app, pool_size=THREADS_DB_CONNECTIONS)
    else:
        _slots = ConnectionSlots(PREFORK_DB_CONNECTIONS)


def child_starting(app: Flask) -> None:
    """A daemons worker's pool child after fork: no pooled connection while idle, and the
    worker's connection slots shared with its siblings."""
    use_worker_pool(app, pool_size=None, slots=_slots)
    with app.app_context():
        # A connection made proves the database reachable as much as a call that returns:
        # on a slow link (a 200 ms lossy hop) a child's per-call connect is most of each call.
        event.listen(db.engine, "connect", _reached_database)


def _reached_database(*_args) -> None:
    if _db_seen is not None:
        _db_seen.value = time.monotonic()


def services_for(app: Flask, hostname: str) -> ProcessServices:
    """This process's services (made on first use, and anew in a forked child)."""
    global _current
    with _lock:
        if _current is None or _current.pid != os.getpid():
            _current = ProcessServices(app, hostname, _pool)
        return _current


class ProcessServices:
    def __init__(self, app: Flask, hostname: str, pool: str) -> None:
        self.app, self.hostname, self.pool, self.pid = app, hostname, pool, os.getpid()
        threads = THREADS_DB_THREADS if pool == THREADS else PREFORK_DB_THREADS
        self.db_threads = threads
        self.db = ThreadPoolExecutor(threads, thread_name_prefix="db")
        self.redis = ThreadPoolExecutor(2, thread_name_prefix="redis")
        with app.app_context():
            prefix = control_channel("")
            self.counters_key = key("worker", hostname, str(self.pid), "services")
        self.control = ControlHub(
            app.config["REDIS_URL"], prefix, f"stashhog-control:{hostname}:{self.pid}"
        )
        # Off the renewer's thread: on a slow link its round trip delayed the next renewal.
        self.leases = LeaseRenewer(app, on_round=lambda: self.redis.submit(self._counters))
        self._db_seen = _db_seen if _db_seen is not None else RawValue("d", time.monotonic())
        self._probe_lock = threading.Lock()
        self._probing_since: float | None = None

    # -- database --------------------------------------------------------------------------
    def run_db(self, fn: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
        """On a database thread: ``fn`` in an app context of its own, retried while the
        database has no connection for it."""

        def attempt():
            with self.app.app_context():
                return fn(*args, **kwargs)

        result = retry_exhausted(attempt)
        self._db_seen.value = time.monotonic()  # one aligned double: a plain store
        return result

    @property
    def db_confirmed_at(self) -> float:
        """When a call of this worker (any of its processes) last reached the database."""
        return self._db_seen.value

    def claim_probe(self, interval: float) -> bool:
        """Whether this caller should probe the database now (one prober at a time, and a
        probe at most every half interval)."""
        now = time.monotonic()
        with self._probe_lock:
            if self._probing_since is not None and now - self._probing_since < interval:
                return False
            if now - self.db_confirmed_at <= interval:
                return False
            self._probing_since = now
            return True

    def probe_done(self) -> None:
        with self._probe_lock:
            self._probing_since = None

    # -- counters --------------------------------------------------------------------------
    def counters(self) -> dict[str, int | str]:
        return {
            "pool": self.pool,
            "control_subscriptions": self.control.subscriptions,
            "control_registered": self.control.registered,
            "lease_rounds": self.leases.rounds,
            "leases_renewed": self.leases.renewed,
            "db_threads": self.db_threads,
        }

    def _counters(self) -> None:
        try:
            with self.app.app_context():
                self.publish_counters()
        except Exception:
            logger.debug("process counters not published", exc_info=True)

    def publish_counters(self) -> None:
        """The process's own counters in Redis (for operators and tests), each lease round."""
        client = get_redis()
        pipe = client.pipeline(transaction=False)
        pipe.hset(self.counters_key, mapping=self.counters())
        pipe.expire(self.counters_key, COUNTERS_SECONDS)
        pipe.execute()
