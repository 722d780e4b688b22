"""The one place a daemon's row changes state: write the row, then publish the events.

Runtime writes pass the instance's generation as ``if_generation``: the UPDATE matches only
while that instance still owns the daemon, so a stale instance's write changes nothing
(fencing). Service writes (start, stop) are conditional on the generation they read, too.

The events carry the daemon as the API shows it, health included (``daemon_health``), so a
page never works health out for itself.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import redis
from flask import current_app
from sqlalchemy import update
from sqlalchemy.engine import Connection, Row

from stashhog.events import EventType, publish
from stashhog.extensions import db
from stashhog.models import Daemon
from stashhog.serializers import daemon_to_dict
from stashhog.services.clock import write_now
from stashhog.services.daemon_health import depends_on_lease, present
from stashhog.services.fencing import bound_lock_holding
from stashhog.services.lease import lease_holder

daemons = Daemon.__table__


def change_daemon(
    daemon_id: uuid.UUID | str,
    *,
    if_generation: int | None = None,
    only_if: dict[str, Any] | None = None,
    conn: Connection | None = None,
    on: Connection | None = None,
    along: Callable[[Connection], Any] | None = None,
    **values: Any,
) -> dict | None:
    """Apply ``values`` to the daemon row, commit, and publish what changed.

    Returns the daemon as a dict, or None when the row is gone, ``if_generation`` no longer
    owns it, or a column named in ``only_if`` differs from the value given there. Given a
    ``conn``, the write joins the caller's transaction and the caller calls
    ``publish_change`` once it has committed. Given ``on``, a transaction of its own on that
    connection (a prefork child's held one: ``stashhog.database.HeldConnection``).
    ``along(conn)`` runs in the same transaction once the row was changed (a final status
    and its run record commit together).
    """
    conditions = dict(only_if or {})
    if if_generation is not None:
        conditions["generation"] = if_generation
    if conn is not None:
        row = _update_row(conn, daemon_id, conditions, values)
        if row is not None and along is not None:
            along(conn)
        return daemon_to_dict(row) if row is not None else None
    if on is not None:
        with on.begin():
            row = _change(on, daemon_id, conditions, values, along)
    else:
        with db.engine.begin() as own:
            row = _change(own, daemon_id, conditions, values, along)
    if row is None:
        return None
    publish_change(row, status_changed="status" in values)
    return daemon_to_dict(row)


def _change(conn: Connection, daemon_id, conditions: dict, values: dict, along) -> Row | None:
    bound_lock_holding(conn)
    row = _update_row(conn, daemon_id, conditions, values)
    if row is not None and along is not None:
        along(conn)
    return row


def _update_row(conn: Connection, daemon_id, conditions: dict, values: dict) -> Row | None:
    stmt = (
        update(daemons)
        .where(daemons.c.id == _as_uuid(daemon_id))
        .where(*(daemons.c[name] == value for name, value in conditions.items()))
        .values(**values, updated_at=write_now(conn))
        .returning(*daemons.c)
    )
    return conn.execute(stmt).first()


def publish_change(row: Row, *, status_changed: bool) -> None:
    """``daemon_status`` when the status moved, and ``daemon_update`` always."""
    try:
        # Only when the verdict needs it: a stop's last write is not slowed by a lookup.
        lease = lease_holder(row.id) if depends_on_lease(row) else None
    except redis.RedisError:
        # Publishing needs Redis too: the database is the record, events are best effort.
        current_app.logger.warning("could not publish the change of daemon %s", row.id)
        return
    data = present(row, lease, datetime.now(UTC))
    if status_changed:
        publish(
            EventType.DAEMON_STATUS,
            data["id"],
            status=data["status"],
            desired_state=data["desired_state"],
            generation=data["generation"],
            status_line=data["status_line"],
            last_error=data["last_error"],
            health=data["health"],
            health_reason=data["health_reason"],
            heartbeat_deadline=data["heartbeat_deadline"],
            timestamp=data["updated_at"],
        )
    publish(EventType.DAEMON_UPDATE, data["id"], daemon=data)


def _as_uuid(value: uuid.UUID | str) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
