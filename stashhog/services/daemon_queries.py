"""Reading daemons back: one row or all, with their health (see ``daemon_health``), the
health report, logs and job history, for the API, CLI and pages."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import select

from stashhog.errors import Invalid, NotFound
from stashhog.extensions import db
from stashhog.models import (
    Daemon,
    DaemonJobAction,
    DaemonJobHistory,
    DaemonLog,
    Job,
    LogLevel,
)
from stashhog.observability import search
from stashhog.serializers import history_to_dict, iso, log_to_dict
from stashhog.services.daemon_health import HEALTHY, STOPPED, UNHEALTHY, present
from stashhog.services.lease import lease_holders

daemons = Daemon.__table__
logs = DaemonLog.__table__
history = DaemonJobHistory.__table__
jobs = Job.__table__

# Most rows one logs or history query returns; larger requests are capped, not refused.
MAX_LIMIT = 1000


class _JobView(NamedTuple):
    type: str
    status: str


def find_daemon_row(ref: uuid.UUID | str) -> Any:
    """One daemon row, by id or by name; NotFound otherwise."""
    column = daemons.c.name
    try:
        ref = ref if isinstance(ref, uuid.UUID) else uuid.UUID(str(ref))
        column = daemons.c.id
    except ValueError:
        pass
    with db.engine.connect() as conn:
        row = conn.execute(select(daemons).where(column == ref)).first()
    if row is None:
        raise NotFound(f"no daemon {str(ref)!r}")
    return row


def get_daemon(ref: uuid.UUID | str) -> dict[str, Any]:
    """One daemon, by id or name (``NotFound`` otherwise), with its health."""
    row = find_daemon_row(ref)
    lease = lease_holders([row.id])[str(row.id)]
    return present(row, lease, datetime.now(UTC))


def list_daemons() -> list[dict[str, Any]]:
    """Every daemon, by name, with its health."""
    rows = all_daemon_rows()
    leases = lease_holders([row.id for row in rows])
    now = datetime.now(UTC)
    return [present(row, leases[str(row.id)], now) for row in rows]


def all_daemon_rows() -> list[Any]:
    """Every daemon row, by name."""
    with db.engine.connect() as conn:
        return list(conn.execute(select(daemons).order_by(daemons.c.name)))


def health_report() -> dict[str, Any]:
    """``healthy`` (with uptime), ``unhealthy`` and ``stopped`` (with a reason) daemons."""
    report: dict[str, Any] = {HEALTHY: [], UNHEALTHY: [], STOPPED: []}
    for daemon in list_daemons():
        entry = {
            "id": daemon["id"],
            "name": daemon["name"],
            "status": daemon["status"],
            "last_heartbeat": daemon["last_heartbeat"],
        }
        if daemon["health"] == HEALTHY:
            entry["uptime_seconds"] = daemon["uptime_seconds"]
        else:
            entry["reason"] = daemon["health_reason"]
        report[daemon["health"]].append(entry)
    report["checked_at"] = iso(datetime.now(UTC))
    return report


# -- logs and history -----------------------------------------------------------------------


def get_logs(
    ref: uuid.UUID | str,
    level: LogLevel | str | None = None,
    since: datetime | None = None,
    after_id: int | None = None,
    before_id: int | None = None,
    limit: int = 100,
    order: str = "desc",
    generation: int | None = None,
    q: str | None = None,
) -> list[dict[str, Any]]:
    """Log lines of one daemon, ordered by id (newest first unless ``order="asc"``).

    ``level`` keeps that level and the more severe ones; ``after_id``/``before_id`` page by id
    (exclusive); ``generation`` keeps one run's lines; ``q`` searches (``search.matches``);
    ``limit`` is capped at ``MAX_LIMIT``."""
    if order not in ("asc", "desc"):
        raise Invalid(f"order must be 'asc' or 'desc', not {order!r}", key="order")
    row = find_daemon_row(ref)
    query = select(logs).where(logs.c.daemon_id == row.id)
    if level is not None:
        query = query.where(logs.c.level.in_(_levels(level)))
    if since is not None:
        query = query.where(logs.c.created_at >= _utc(since))
    if after_id is not None:
        query = query.where(logs.c.id > after_id)
    if before_id is not None:
        query = query.where(logs.c.id < before_id)
    if generation is not None:
        query = query.where(logs.c.generation == generation)
    if q:
        query = query.where(search.matches(q))
    query = query.order_by(logs.c.id.desc() if order == "desc" else logs.c.id.asc())
    with db.engine.connect() as conn:
        rows = conn.execute(query.limit(_cap(limit))).all()
    return [log_to_dict(line) for line in rows]


def _levels(level: LogLevel | str) -> list[str]:
    try:
        return LogLevel.at_least(str(level).upper())
    except ValueError:
        raise Invalid(f"unknown log level {level!r}", key="level") from None


def get_history(
    ref: uuid.UUID | str,
    action: DaemonJobAction | str | None = None,
    since: datetime | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """What one daemon did with jobs, newest first, with each job's type and status."""
    row = find_daemon_row(ref)
    query = (
        select(history, jobs.c.type.label("job_type"), jobs.c.status.label("job_status"))
        .outerjoin(jobs, jobs.c.id == history.c.job_id)
        .where(history.c.daemon_id == row.id)
    )
    if action is not None:
        query = query.where(history.c.action == _action(action))
    if since is not None:
        query = query.where(history.c.created_at >= _utc(since))
    query = query.order_by(history.c.created_at.desc(), history.c.id.desc()).limit(_cap(limit))
    with db.engine.connect() as conn:
        rows = conn.execute(query).all()
    return [
        history_to_dict(
            entry, _JobView(entry.job_type, entry.job_status) if entry.job_type else None
        )
        for entry in rows
    ]


def _action(action: DaemonJobAction | str) -> str:
    try:
        return DaemonJobAction(str(action).upper()).value
    except ValueError:
        raise Invalid(f"unknown job action {action!r}", key="action") from None


def _utc(moment: datetime) -> datetime:
    """Naive means UTC; aware moments are converted (PostgreSQL refuses offsets past 15:59)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _cap(limit: int) -> int:
    return max(1, min(int(limit), MAX_LIMIT))
