"""Whole-system health: liveness (the web process answers) and readiness (database, Redis,
and Celery workers per queue).

Readiness asks the workers which queues they consume, a broadcast that waits a full
``INSPECTION_TIMEOUT`` for replies, and every open page polls it. So each process runs one
inspection at a time, on a broker connection of its own, and reuses its answer for
``INSPECTION_MAX_AGE`` seconds; requests that arrive meanwhile take the last answer (or wait
for the first). Celery's own ``control.inspect()`` must not be used here: its broadcast holds
a connection from the broker pool and then waits for a second one for its producer, and with
many request threads doing that at once every one of them waited for good (40 clients froze
the web process, ARCHITECTURE §6).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from celery import Celery
from celery.app.control import flatten_reply
from flask import current_app
from kombu import Connection
from sqlalchemy import text

from stashhog.celery_app import get_celery
from stashhog.events import get_redis
from stashhog.extensions import db
from stashhog.services.daemon_capacity import current_capacity

REQUIRED_QUEUES = ("daemons", "jobs")
# Seconds workers get to reply to an inspection.
INSPECTION_TIMEOUT = 1.0
# Seconds an inspection's answer is reused by every request of the process.
INSPECTION_MAX_AGE = 2.0
# Inspections in a row a worker that replied before must miss to count as gone.
INSPECTION_MISSES = 2
# Seconds a request waits for the process's first answer (broker connect + replies).
INSPECTION_WAIT = 6.0
# An answer older than this means the inspection is stuck (e.g. publishing to a lost broker).
INSPECTION_STALE = 15.0
# Seconds a worker's pool size (``stats``: max-concurrency) is reused; asked again sooner
# when a worker appears. A second broadcast, so not on every inspection.
SLOTS_MAX_AGE = 30.0


def liveness() -> dict[str, Any]:
    """The web process answers: no database, Redis or broker call."""
    return {"status": "ok"}


@dataclass
class Answer:
    queues: dict[str, list[str]] = field(default_factory=dict)
    error: str | None = None
    # Pool size (max-concurrency) by worker, as last asked (see SLOTS_MAX_AGE).
    slots: dict[str, int] = field(default_factory=dict)
    at: float = field(default_factory=time.monotonic)


class WorkerInspection:
    """One process's cached view of which workers consume which queue."""

    def __init__(self, celery: Celery) -> None:
        self.celery = celery
        self.lock = threading.Lock()
        self.answer: Answer | None = None
        self.connection: Connection | None = None
        # What each worker last said it consumes, and how many inspections in a row it missed.
        self.consumed: dict[str, list[str]] = {}
        self.misses: dict[str, int] = {}
        self.slots: dict[str, int] = {}
        self.slots_at = float("-inf")
        conf = celery.conf
        # Celery's control mailbox minus its producer pool: publishing then uses a producer
        # on our own connection's channel, so no pool is touched at all.
        self.mailbox = celery.control.Mailbox(
            conf.control_exchange,
            type="fanout",
            accept=conf.accept_content,
            serializer=conf.task_serializer,
            queue_ttl=conf.control_queue_ttl,
            reply_queue_ttl=conf.control_queue_ttl,
            queue_expires=conf.control_queue_expires,
            reply_queue_expires=conf.control_queue_expires,
            queue_exclusive=conf.control_queue_exclusive,
            queue_durable=conf.control_queue_durable,
        )

    def workers_by_queue(self) -> dict[str, list[str]]:
        """Worker names by queue consumed, at most ``INSPECTION_MAX_AGE`` seconds old."""
        if not self._fresh():
            # The first answer is waited for; after that nobody queues behind the one asking.
            if self.answer is None:
                asking = self.lock.acquire(timeout=INSPECTION_WAIT)
            else:
                asking = self.lock.acquire(blocking=False)
            if asking:
                try:
                    if not self._fresh():
                        self.answer = self._inspect()
                finally:
                    self.lock.release()
        answer = self.answer
        if answer is None:
            raise TimeoutError(f"no worker inspection finished within {INSPECTION_WAIT}s")
        if answer.error:
            raise RuntimeError(answer.error)
        if time.monotonic() - answer.at > INSPECTION_STALE:
            raise TimeoutError(f"the worker inspection has not finished for {INSPECTION_STALE}s")
        return answer.queues

    def last_answer(self) -> Answer | None:
        """The newest good answer younger than INSPECTION_STALE, without asking (never
        blocks: the supervisor's pass reads this under its lock)."""
        answer = self.answer
        if answer is None or answer.error or time.monotonic() - answer.at > INSPECTION_STALE:
            return None
        return answer

    def _fresh(self) -> bool:
        answer = self.answer
        return answer is not None and time.monotonic() - answer.at < INSPECTION_MAX_AGE

    def _inspect(self) -> Answer:
        try:
            if self.connection is None:
                self.connection = self.celery.connection_for_write()
            replies = self.mailbox(self.connection).multi_call(
                "active_queues", timeout=INSPECTION_TIMEOUT
            )
        except Exception as exc:  # any broker error: report it, reconnect next time
            self._disconnect()
            return Answer(error=str(exc) or type(exc).__name__)
        replied = {
            worker: [queue["name"] for queue in consumed]
            for worker, consumed in (flatten_reply(replies or []) or {}).items()
        }
        # A busy worker (a prefork pool starting daemons, a loaded host) can miss one
        # broadcast's 1 s window: one that replied before counts until it misses
        # INSPECTION_MISSES in a row, so a live system is not reported down for a reply late.
        current = dict(replied)
        for worker, names in self.consumed.items():
            if worker in replied:
                self.misses.pop(worker, None)
                continue
            missed = self.misses.pop(worker, 0) + 1
            if missed < INSPECTION_MISSES:
                self.misses[worker], current[worker] = missed, names
        self.consumed = replied = current
        queues: dict[str, list[str]] = {}
        for worker, names in replied.items():
            for name in names:
                queues.setdefault(name, []).append(worker)
        return Answer(queues=queues, slots=self._pool_sizes(replied))

    def _pool_sizes(self, workers: dict[str, list[str]]) -> dict[str, int]:
        """max-concurrency by worker: asked when SLOTS_MAX_AGE passed or a worker appeared;
        a failed ask keeps the last sizes (health then reports no capacity, not an error)."""
        stale = time.monotonic() - self.slots_at > SLOTS_MAX_AGE
        if stale or not set(workers) <= set(self.slots):
            try:
                replies = self.mailbox(self.connection).multi_call(
                    "stats", timeout=INSPECTION_TIMEOUT
                )
                stats = flatten_reply(replies or []) or {}
                self.slots = {**self.slots, **{
                    worker: int(reply.get("pool", {}).get("max-concurrency") or 1)
                    for worker, reply in stats.items()
                }}  # fmt: skip
                self.slots_at = time.monotonic()
            except Exception:  # the next inspection asks again
                self.slots_at = float("-inf")
        return {worker: self.slots[worker] for worker in workers if worker in self.slots}

    def _disconnect(self) -> None:
        connection, self.connection = self.connection, None
        if connection is not None:
            try:
                connection.release()
            except Exception:  # already broken; dropping it is all we want
                pass


def worker_inspection() -> WorkerInspection:
    """The current app's inspection (one per app and process)."""
    extensions = current_app.extensions
    inspection = extensions.get("worker_inspection")
    if inspection is None:
        inspection = extensions.setdefault("worker_inspection", WorkerInspection(get_celery()))
    return inspection


def check_database() -> dict[str, Any]:
    # A connection of its own, returned at once: the request's session would hold one from
    # the pool until the request ends, and a flood of health polls would empty the pool.
    try:
        with db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return {"ok": True, "dialect": db.engine.dialect.name}
    except Exception as exc:  # any driver error means "unreachable" here
        return {"ok": False, "error": str(exc).splitlines()[0]}


def check_redis() -> dict[str, Any]:
    try:
        get_redis().ping()
        return {"ok": True}
    except Exception as exc:
        return {"ok": False, "error": str(exc)}


def check_queues(redis_ok: bool) -> dict[str, Any]:
    if not redis_ok:
        return {
            name: {"ok": False, "workers": [], "error": "broker unreachable"}
            for name in REQUIRED_QUEUES
        }
    try:
        seen = worker_inspection().workers_by_queue()
    except Exception as exc:
        return {name: {"ok": False, "workers": [], "error": str(exc)} for name in REQUIRED_QUEUES}
    return {
        name: {"ok": bool(seen.get(name)), "workers": sorted(seen.get(name, []))}
        | ({} if seen.get(name) else {"error": f"no worker consumes queue {name!r}"})
        for name in REQUIRED_QUEUES
    }


def check_daemon_slots(queues: dict[str, Any]) -> dict[str, Any] | None:
    """Busy and total slots of the daemons workers; None when unknown (no worker, no
    answer yet, or the database or Redis unreachable: reported as such already)."""
    if not queues["daemons"]["ok"]:
        return None
    try:
        capacity = current_capacity(worker_inspection().last_answer())
    except Exception:
        return None
    return capacity.as_dict() if capacity.workers else None


def system_health() -> dict[str, Any]:
    """Readiness (``failing`` makes it unhealthy) and ``warnings`` that leave it ready,
    such as every daemons worker slot busy: running daemons are fine, new starts fail."""
    database = check_database()
    redis_state = check_redis()
    queues = check_queues(redis_state["ok"])
    slots = check_daemon_slots(queues)
    warnings = []
    if slots is not None and slots["full"]:
        warnings.append(f"daemons workers are full ({slots['busy']} of {slots['slots']} "
                        "slots busy)")  # fmt: skip
    failing = [
        name for name, part in (("database", database), ("redis", redis_state)) if not part["ok"]
    ]
    failing += [f"queue:{name}" for name, part in queues.items() if not part["ok"]]
    return {
        "status": "ok" if not failing else "unhealthy",
        "failing": failing,
        "warnings": warnings,
        "database": database,
        "redis": redis_state,
        "queues": queues,
        "daemon_slots": slots,
    }
