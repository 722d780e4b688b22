"""Generation fencing for writes that are not a daemon-row UPDATE (logs, history).

Inside the writer's transaction, the daemon row is read ``FOR SHARE``: if the generation is
still ours, nobody can take the daemon over until we commit, since taking over updates the
row. SQLite has one writer at a time, so the plain read is enough there.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.engine import Connection

from stashhog.models import Daemon

daemons = Daemon.__table__


class Fenced(Exception):
    """This instance's generation no longer owns the daemon: it must stop without writing."""


def hold_generation(conn: Connection, daemon_id: uuid.UUID, generation: int) -> None:
    """Raise ``Fenced`` unless ``generation`` owns the daemon; hold that until commit."""
    stmt = select(daemons.c.generation).where(daemons.c.id == daemon_id)
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update(read=True)
    current = conn.execute(stmt).scalar()
    if current != generation:
        raise Fenced(f"generation {generation} was superseded by {current}")
