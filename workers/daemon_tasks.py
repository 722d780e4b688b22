"""The daemon task: one long-lived task per running daemon, on the ``daemons`` queue."""

from __future__ import annotations

import errno
import logging
import time
import uuid

from celery import shared_task
from flask import current_app
from sqlalchemy.exc import OperationalError

from stashhog.database import DatabaseBusy
from stashhog.services.daemon_capacity import describe_start_failure, record_start_failure
from workers import control, signals  # noqa: F401  (remote control command, signal handlers)
from workers.runtime import DaemonRuntime

logger = logging.getLogger(__name__)
# A worker that cannot reach the database hands a start back and keeps the slot this long,
# so a worker that can takes it (rather than this one again).
BOUNCE_HOLD = 2.0


# Early ack and no time limits: see celeryconfig.py and ARCHITECTURE.md §6.
@shared_task(
    name="stashhog.run_daemon",
    bind=True,
    acks_late=False,
    time_limit=None,
    soft_time_limit=None,
    ignore_result=True,
)
def run_daemon(self, daemon_id: str, generation: int) -> str:
    runtime = DaemonRuntime(
        current_app._get_current_object(),
        uuid.UUID(daemon_id),
        int(generation),
        self.request.id,
        self.request.hostname or "unknown",
    )
    try:
        return runtime.run()
    except (DatabaseBusy, MemoryError, OSError, RuntimeError) as exc:
        if runtime.claimed or not lacks_resource(exc):
            raise
        # No connection, memory, file descriptor or thread for this start, after retries:
        # the supervisor ends it in ERROR with this reason (the row cannot be written here).
        reason = describe_start_failure(exc, runtime.hostname)
        logger.error("daemon %s generation %s %s", daemon_id, generation, reason)
        record_start_failure(daemon_id, int(generation), reason)
        return "not started"
    except OperationalError:
        if runtime.claimed:
            raise
        # Cut off from PostgreSQL (a partition): with early ack the start would be lost
        # until the supervisor's dispatch timeout. Queue it again for another worker.
        logger.warning("database unreachable: handing daemon %s generation %s back to the "
                       "queue", daemon_id, generation, exc_info=True)  # fmt: skip
        self.apply_async((daemon_id, generation), task_id=self.request.id)
        time.sleep(BOUNCE_HOLD)
        return "handed back"


def lacks_resource(exc: BaseException) -> bool:
    """Did the start fail for want of a resource of this worker (not a bug to re-raise)?"""
    if isinstance(exc, DatabaseBusy | MemoryError):
        return True
    if isinstance(exc, OSError):
        return exc.errno in (errno.EAGAIN, errno.ENOMEM, errno.EMFILE, errno.ENFILE)
    return isinstance(exc, RuntimeError) and "can't start new thread" in str(exc)
