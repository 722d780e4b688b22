"""What daemons did with jobs: fenced writes to ``daemon_job_history``, one event each."""

from __future__ import annotations

import uuid

from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from stashhog.events import EventType, publish
from stashhog.extensions import db
from stashhog.models import DaemonJobAction, DaemonJobHistory
from stashhog.models.types import utcnow
from stashhog.serializers import iso
from stashhog.services.fencing import hold_generation

history = DaemonJobHistory.__table__
TERMINAL_ACTIONS = {DaemonJobAction.FINISHED, DaemonJobAction.FAILED, DaemonJobAction.CANCELLED}


def record_job_action(
    daemon_id: uuid.UUID,
    generation: int,
    job_id: uuid.UUID | None,
    action: DaemonJobAction,
    reason: str | None = None,
) -> dict | None:
    """Insert one history row if ``generation`` owns the daemon (else ``Fenced``).

    Returns None when the job already has its terminal record (a unique index keeps it to
    exactly one), so a re-adopting instance may safely try again."""
    entry = {
        "id": uuid.uuid4(),
        "daemon_id": daemon_id,
        "job_id": job_id,
        "action": str(action),
        "reason": reason,
        "created_at": utcnow(),
    }
    try:
        with db.engine.begin() as conn:
            hold_generation(conn, daemon_id, generation)
            conn.execute(insert(history).values(**entry))
    except IntegrityError:
        if action in TERMINAL_ACTIONS:
            return None
        raise
    data = {
        **entry,
        "id": str(entry["id"]),
        "daemon_id": str(daemon_id),
        "job_id": str(job_id) if job_id else None,
        "created_at": iso(entry["created_at"]),
    }
    publish(
        EventType.DAEMON_JOB_ACTION,
        daemon_id,
        **{k: v for k, v in data.items() if k != "daemon_id"},
    )
    return data
