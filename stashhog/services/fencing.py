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


def bound_lock_holding(conn: Connection) -> None:
    """A writer paused mid-transaction (SIGSTOP, a frozen VM) would hold its row lock and
    block its own successor's takeover forever: PostgreSQL ends such a transaction after
    two idle seconds. Our transactions last milliseconds."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL idle_in_transaction_session_timeout = '2s'")


def hold_generation(conn: Connection, daemon_id: uuid.UUID, generation: int) -> None:
    """Raise ``Fenced`` unless ``generation`` owns the daemon; hold that until commit."""
    bound_lock_holding(conn)
    stmt = select(daemons.c.generation).where(daemons.c.id == daemon_id)
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update(read=True)
    current = conn.execute(stmt).scalar()
    if current != generation:
        raise Fenced(f"generation {generation} was superseded by {current}")
