"""Alerts: the lifecycle (firing -> resolved) evaluated by each supervisor pass, the list the
panel and API read, and the hand-off of notifications to jobs.

A pass compares the conditions that hold now with the alerts firing: a new condition fires an
alert (the partial unique index keeps one per rule and subject, so overlapping passes cannot
fire twice), a firing alert whose condition is gone resolves. Notifications never run in the
pass: ``dispatch_notifications`` groups every firing and resolve not yet sent into one
``ALERT_NOTIFY`` job per channel, at most one group per ``ALERT_NOTIFY_INTERVAL`` (a Redis
key), so a storm of alerts becomes a few messages.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from flask import current_app
from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from stashhog.events import EventType, get_redis, key, publish
from stashhog.extensions import db
from stashhog.models import Alert, AlertChannel, Daemon, JobType
from stashhog.models.enums import AlertStatus
from stashhog.observability.conditions import Condition, current_conditions
from stashhog.observability.rules import current_rules
from stashhog.serializers import iso
from stashhog.services.job_service import create_job

alerts = Alert.__table__
channels = AlertChannel.__table__
daemons = Daemon.__table__
FIRING = AlertStatus.FIRING


def evaluate(rows: list[Any], now: datetime | None = None) -> list[str]:
    """One evaluation against the pass's daemon rows; returns what fired and resolved."""
    now = now or datetime.now(UTC)
    wanted = {(c.rule, c.subject): c for c in current_conditions(current_rules(), rows, now)}
    with db.engine.connect() as conn:
        firing = {(r.rule, r.subject): r for r in conn.execute(
            select(alerts).where(alerts.c.status == FIRING))}  # fmt: skip
    changes = [_fire(c, now) for k, c in wanted.items() if k not in firing]
    changes += [_resolve(r, now) for k, r in firing.items() if k not in wanted]
    return [change for change in changes if change]


def _fire(condition: Condition, now: datetime) -> str | None:
    values = {"id": uuid.uuid4(), "rule": condition.rule, "subject": condition.subject,
              "daemon_id": condition.daemon_id, "status": FIRING, "message": condition.message,
              "value": condition.value, "started_at": now}  # fmt: skip
    try:
        with db.engine.begin() as conn:
            conn.execute(insert(alerts).values(**values))
    except IntegrityError:
        return None  # another pass fired it first
    _publish(values)
    return f"alert firing: {condition.message}"


def _resolve(row: Any, now: datetime) -> str | None:
    stmt = (
        update(alerts)
        .where(alerts.c.id == row.id, alerts.c.status == FIRING)
        .values(status=AlertStatus.RESOLVED, resolved_at=now)
    )
    with db.engine.begin() as conn:
        if conn.execute(stmt).rowcount == 0:
            return None
    _publish({**row._asdict(), "status": AlertStatus.RESOLVED, "resolved_at": now})
    return f"alert resolved: {row.message}"


def _publish(values: dict) -> None:
    publish(EventType.ALERT_UPDATE, values["daemon_id"], alert={
        "id": str(values["id"]), "rule": values["rule"], "status": str(values["status"]),
        "message": values["message"]}, firing=firing_count())  # fmt: skip


def firing_count() -> int:
    with db.engine.connect() as conn:
        return conn.execute(select(func.count()).where(alerts.c.status == FIRING)).scalar()


def list_alerts(status: str | None = None, daemon_id: uuid.UUID | None = None,
                limit: int = 100) -> dict[str, Any]:  # fmt: skip
    query = select(alerts, daemons.c.name.label("daemon_name")).outerjoin(
        daemons, daemons.c.id == alerts.c.daemon_id
    )
    if status:
        query = query.where(alerts.c.status == status)
    if daemon_id:
        query = query.where(alerts.c.daemon_id == daemon_id)
    query = query.order_by(alerts.c.started_at.desc()).limit(limit)
    with db.engine.connect() as conn:
        rows = conn.execute(query).all()
    return {"alerts": [alert_to_dict(row) for row in rows], "firing": firing_count()}


def alert_to_dict(row: Any) -> dict[str, Any]:
    return {
        "id": str(row.id), "rule": row.rule, "subject": row.subject,
        "daemon_id": str(row.daemon_id) if row.daemon_id else None,
        "daemon_name": getattr(row, "daemon_name", None), "status": row.status,
        "message": row.message, "value": row.value, "started_at": iso(row.started_at),
        "resolved_at": iso(row.resolved_at), "notified_at": iso(row.notified_at),
        "resolve_notified_at": iso(row.resolve_notified_at),
    }  # fmt: skip


# -- notifications ---------------------------------------------------------------------------


def dispatch_notifications(now: datetime | None = None) -> int:
    """Hand the owed firings and resolves to one job per channel; returns events sent."""
    now = now or datetime.now(UTC)
    owed_firing = alerts.c.notified_at.is_(None)
    owed_resolve = (alerts.c.status == AlertStatus.RESOLVED) & alerts.c.resolve_notified_at.is_(
        None
    )
    with db.engine.connect() as conn:
        if conn.execute(select(alerts.c.id).where(or_(owed_firing, owed_resolve))).first() is None:
            return 0
    interval = current_app.config["ALERT_NOTIFY_INTERVAL"]
    if not get_redis().set(key("alerts", "notify"), 1, nx=True, px=int(interval * 1000)):
        return 0  # a group went out less than ALERT_NOTIFY_INTERVAL ago: wait for the next
    events = _claim(owed_firing, owed_resolve, now)
    with db.engine.connect() as conn:
        channel_ids = [str(row.id) for row in conn.execute(select(channels.c.id))]
    for channel_id in channel_ids:  # none configured: the events are simply not sent
        create_job(JobType.ALERT_NOTIFY, {"channel_id": channel_id, "events": events})
    return len(events) if channel_ids else 0


def _claim(owed_firing, owed_resolve, now: datetime) -> list[dict[str, str]]:
    """Mark the owed events sent (conditionally, so an overlapping pass claims none twice)."""
    with db.engine.begin() as conn:
        fired = (
            conn.execute(
                update(alerts).where(owed_firing).values(notified_at=now).returning(alerts.c.id)
            )
            .scalars()
            .all()
        )
        resolved = conn.execute(
            update(alerts).where(owed_resolve).values(resolve_notified_at=now)
            .returning(alerts.c.id)
        ).scalars().all()  # fmt: skip
    # A firing and its resolve in the same group: both are told, in that order.
    return [{"alert_id": str(i), "event": "firing"} for i in fired] + [
        {"alert_id": str(i), "event": "resolved"} for i in resolved
    ]
