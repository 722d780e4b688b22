"""Whether a daemon can start: the daemons workers' slots, and the starts that failed for
want of a resource.

A slot is one place in a daemons worker's pool (prefork children or threads: the pool's
``max-concurrency``, asked by the health inspection). A slot is busy while a daemon it runs
holds its lease, so the busy count comes from the rows and leases a supervisor pass has
already read: no broadcast per pass. A start that no worker took within DISPATCH_TIMEOUT
while every slot is busy, or that its runtime could not start (no database connection,
MemoryError, ...), ends ERROR with the reason and desired STOPPED: its queued task is
withdrawn, and the operator starts it again once a slot is free (no start later by surprise).

A runtime that cannot reach the database records its failure here in Redis
(``record_start_failure``), one key per daemon and generation; the supervisor writes the
ERROR, fenced by that generation.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from flask import current_app
from sqlalchemy import select

from stashhog.celery_app import get_celery
from stashhog.events import get_redis, key
from stashhog.extensions import db
from stashhog.models import Daemon, DaemonStatus, DesiredState
from stashhog.models.enums import RUNNING_STATES
from stashhog.services.daemon_state import change_daemon
from stashhog.services.lease import lease_holders

DAEMONS_QUEUE = "daemons"
# Seconds a start failure recorded by a runtime is kept for the supervisor to read.
FAILURE_TTL = 120
# How many redispatches back a recorded failure still ends the start (see note_redispatch).
REDISPATCH_CHAIN = 3
daemons = Daemon.__table__


@dataclass(frozen=True)
class Capacity:
    """Busy and total slots by daemons worker."""

    workers: dict[str, tuple[int, int]] = field(default_factory=dict)  # name: (busy, slots)

    @property
    def busy(self) -> int:
        return sum(busy for busy, _slots in self.workers.values())

    @property
    def slots(self) -> int:
        return sum(slots for _busy, slots in self.workers.values())

    @property
    def full(self) -> bool:
        return bool(self.workers) and self.busy >= self.slots

    def describe(self) -> str:
        return ", ".join(f"{name} {busy}/{slots}" for name, (busy, slots) in
                         sorted(self.workers.items()))  # fmt: skip

    def full_reason(self) -> str:
        return (f"not started: every daemons worker slot is busy ({self.describe()}); add a "
                "worker or raise DAEMON_CONCURRENCY, then start it again")  # fmt: skip

    def as_dict(self) -> dict[str, Any]:
        return {
            "busy": self.busy,
            "slots": self.slots,
            "full": self.full,
            "workers": {name: {"busy": busy, "slots": slots}
                        for name, (busy, slots) in sorted(self.workers.items())},
        }  # fmt: skip


def capacity_of(answer: Any, rows: Iterable[Any], holders: dict[str, int | None]) -> Capacity:
    """The capacity of the daemons workers in ``answer`` (a health inspection), their busy
    slots counted from ``rows`` whose lease is held. Workers whose pool size is not known
    yet are left out (a Capacity with no workers is never full)."""
    workers = answer.queues.get(DAEMONS_QUEUE, []) if answer is not None else []
    sizes = {name: answer.slots[name] for name in workers if name in answer.slots}
    busy = dict.fromkeys(sizes, 0)
    for row in rows:
        if row.worker in busy and holders.get(str(row.id)) is not None:
            busy[row.worker] += 1
    return Capacity({name: (busy[name], sizes[name]) for name in sizes})


def current_capacity(answer: Any) -> Capacity:
    """For the health check: the running daemons' rows and leases, read now."""
    query = select(daemons.c.id, daemons.c.worker).where(daemons.c.status.in_(RUNNING_STATES))
    with db.engine.connect() as conn:
        rows = conn.execute(query).all()
    return capacity_of(answer, rows, lease_holders([row.id for row in rows]))


# -- start failures --------------------------------------------------------------------------


def failure_key(daemon_id: object, generation: int) -> str:
    return key("start-failed", daemon_id, generation)


def record_start_failure(daemon_id: object, generation: int, reason: str) -> None:
    """For a runtime that could not start generation ``generation`` and cannot write its row
    (no database connection): the supervisor's next pass writes ERROR with ``reason``."""
    get_redis().set(failure_key(daemon_id, generation), reason[:2000], ex=FAILURE_TTL)


def describe_start_failure(exc: BaseException, worker: str) -> str:
    """The reason a runtime records for a start it could not make (``record_start_failure``):
    ``DatabaseBusy`` (no connection), ``MemoryError``, ``OSError`` (a fork or thread refused)."""
    what = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"not started: {type(exc).__name__} on worker {worker}: {what}"


def note_redispatch(daemon_id: object, previous: int, generation: int) -> None:
    """The supervisor dispatched ``generation`` again for an overdue start of ``previous``:
    a failure ``previous``'s runtime records later (a start retrying for a connection outlasts
    DISPATCH_TIMEOUT) still ends the start it was redispatched as."""
    get_redis().set(key("start-redispatched", daemon_id, generation), previous, ex=FAILURE_TTL)


def start_failures(rows: Iterable[Any]) -> dict[str, str]:
    """Recorded failures of the STARTING ``rows``' current generations, or of the starts they
    were redispatched for (up to REDISPATCH_CHAIN back): a round trip per step."""
    pending = {str(row.id): row.generation for row in rows if row.status == DaemonStatus.STARTING}
    found: dict[str, str] = {}
    redis = get_redis()
    for _step in range(REDISPATCH_CHAIN):
        if not pending:
            break
        ids = list(pending)
        keys = [failure_key(i, pending[i]) for i in ids]
        keys += [key("start-redispatched", i, pending[i]) for i in ids]
        values = redis.mget(keys)
        failures, previous = values[: len(ids)], values[len(ids) :]
        found |= {i: value.decode() for i, value in zip(ids, failures, strict=True) if value}
        pending = {i: int(before) for i, before in zip(ids, previous, strict=True)
                   if before is not None and i not in found}  # fmt: skip
    return found


def fail_start(row: Any, reason: str) -> bool:
    """End the start of ``row``'s generation in ERROR with ``reason``: desired STOPPED, a new
    generation (a copy of the task that runs anyway exits as stale) and its queued task
    revoked. False when the row moved on meanwhile."""
    changed = change_daemon(
        row.id, if_generation=row.generation, only_if={"status": DaemonStatus.STARTING},
        status=DaemonStatus.ERROR, desired_state=DesiredState.STOPPED,
        generation=row.generation + 1, last_error=reason, status_line=reason,
        stopped_at=datetime.now(UTC), worker_pid=None,
    )  # fmt: skip
    if changed is not None and row.task_id:
        try:
            get_celery().control.revoke(row.task_id)
        except Exception:  # the generation already fences the task; revoke only spares a slot
            current_app.logger.warning("could not revoke task %s", row.task_id, exc_info=True)
    return changed is not None


@dataclass(frozen=True)
class StartCheck:
    """What one supervisor pass knows of pending starts: failures runtimes recorded, and
    the capacity (None until an inspection answered; then overdue starts are dispatched
    again, as before)."""

    failures: dict[str, str] = field(default_factory=dict)
    capacity: Capacity | None = None
    wants_inspection: bool = False
    queued: int = 0  # start messages still waiting in the daemons queue

    def still_queued(self) -> bool:
        """Starts wait in the broker's queue: workers are taking them (a thousand starts
        at once take longer than the dispatch timeout), so an overdue one is not lost."""
        return self.queued > 0

    def reason(self, row: Any, overdue: bool) -> str | None:
        """Why ``row``'s start cannot go on, or None."""
        if failure := self.failures.get(str(row.id)):
            return failure
        if overdue and self.capacity is not None and self.capacity.full:
            return self.capacity.full_reason()
        return None


def check_starts(
    rows: list[Any], holders: dict[str, int | None], pending_after, last_answer
) -> StartCheck:
    """``pending_after(row)``: True for a STARTING row waited on long enough that the
    capacity is worth knowing; ``last_answer()``: the last worker inspection, or None
    (never a broadcast: the pass holds its lock)."""
    pending = [row for row in rows if row.status == DaemonStatus.STARTING
               and holders.get(str(row.id)) is None]  # fmt: skip
    if not pending:
        return StartCheck()
    # A recorded failure counts once the start has waited as long: a start handed back to
    # the queue (a worker cut off from the database) may meanwhile be taken by another.
    waited = [row for row in pending if pending_after(row)]
    answer = last_answer() if waited else None
    capacity = capacity_of(answer, rows, holders) if answer is not None else None
    return StartCheck(start_failures(waited), capacity, bool(waited), queued_starts(waited))


def queued_starts(waited: list[Any]) -> int:
    """Messages waiting in the ``daemons`` queue (the Redis broker keeps a queue as a list
    under its name, in the database REDIS_URL names); 0 when no start is overdue."""
    if not waited:
        return 0
    try:
        return int(get_redis().llen(DAEMONS_QUEUE))
    except Exception:  # without the count, an overdue start is dispatched again, as before
        current_app.logger.warning("could not read the daemons queue's length", exc_info=True)
        return 0
