"""The instance's own reads and writes of its daemon's row, each run in a thread of its own
(``DaemonInstance.call_db``)."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from stashhog.extensions import db
from stashhog.models import Daemon
from stashhog.observability.metrics import record_sample
from stashhog.services.daemon_state import change_daemon


def record_heartbeat(daemon_id: uuid.UUID, generation: int, values: dict, sample: dict | None):
    """The heartbeat's write, then (if the row is still ours) the process sample."""
    row = change_daemon(daemon_id, if_generation=generation, **values)
    if row is not None and sample is not None:
        record_sample(daemon_id, generation, sample)
    return row


def read_ownership(daemon_id: uuid.UUID):
    """The row's generation and desired state, or None if it is gone."""
    table = Daemon.__table__
    query = select(table.c.generation, table.c.desired_state).where(table.c.id == daemon_id)
    with db.engine.connect() as conn:
        return conn.execute(query).first()
