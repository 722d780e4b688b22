"""Reading daemons back: health, uptime, logs and job history, for the API, CLI and pages.

Health is derived, never stored. A daemon is *healthy* when it should run and does: its row is
RUNNING, its instance holds the Redis lease, and a heartbeat arrived within twice its
``heartbeat_interval`` (the runtime beats on a coroutine of its own, so a daemon sleeping in
``self.sleep`` keeps beating); a daemon still within the start-up grace counts as healthy,
with the reason "starting". It is *unhealthy* when it should run and does not (no live
instance, a silent heartbeat, ended in ERROR, or not picked up by a worker), with the reason.
Everything else is *stopped*, with a reason too (stopped, stopping, disabled, after an error).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import select

from stashhog.daemons import ConfigurationError, UnknownDaemonType, get_daemon_class
from stashhog.daemons.config import DaemonConfig, validate_configuration
from stashhog.extensions import db
from stashhog.models import (
    Daemon,
    DaemonJobAction,
    DaemonJobHistory,
    DaemonLog,
    DaemonStatus,
    DesiredState,
    Job,
    LogLevel,
)
from stashhog.models.enums import LIVE_STATES
from stashhog.serializers import daemon_to_dict, history_to_dict, iso, log_to_dict
from stashhog.services.errors import Invalid, NotFound
from stashhog.services.lease import lease_holders

daemons = Daemon.__table__
logs = DaemonLog.__table__
history = DaemonJobHistory.__table__
jobs = Job.__table__

# Most rows one logs or history query returns; larger requests are capped, not refused.
MAX_LIMIT = 1000
# A start that no worker has picked up within this long may be dispatched again.
STARTING_GRACE = timedelta(seconds=10)
HEALTHY, UNHEALTHY, STOPPED = "healthy", "unhealthy", "stopped"
# The runtime checks its heartbeat every 0.1 s, so no heartbeat comes faster than that; the
# slack covers the database write and clock differences between worker and web hosts.
HEARTBEAT_TICK, HEARTBEAT_SLACK = 0.1, 0.5


class Health(NamedTuple):
    state: str
    reason: str | None


class _JobView(NamedTuple):
    type: str
    status: str


# -- health ------------------------------------------------------------------------------


def heartbeat_interval(row: Any) -> float:
    """The daemon's effective ``heartbeat_interval`` (stored over defaults)."""
    try:
        schema = get_daemon_class(row.type).Config
        return validate_configuration(schema, row.configuration).heartbeat_interval
    except (UnknownDaemonType, ConfigurationError):
        return DaemonConfig.model_fields["heartbeat_interval"].default


def daemon_health(row: Any, lease: int | None, now: datetime) -> Health:
    """Healthy, unhealthy (with the reason) or stopped; ``lease`` is the holding generation."""
    if row.desired_state != DesiredState.RUNNING:
        return Health(STOPPED, _stopped_reason(row))
    if row.status == DaemonStatus.ERROR:
        return Health(UNHEALTHY, f"ended in error: {row.last_error or 'unknown error'}")
    if row.status == DaemonStatus.STARTING:
        if now - row.updated_at <= STARTING_GRACE:
            return Health(HEALTHY, "starting")
        waited = (now - row.updated_at).total_seconds()
        return Health(UNHEALTHY, f"no worker has started it after {waited:.0f}s")
    if row.status != DaemonStatus.RUNNING:
        return Health(UNHEALTHY, f"should be running but is {row.status}")
    return _running_health(row, lease, now)


def _running_health(row: Any, lease: int | None, now: datetime) -> Health:
    if lease is None:
        return Health(UNHEALTHY, "no live instance: its lease has expired")
    if lease != row.generation:
        return Health(UNHEALTHY, f"lease held by generation {lease}, not {row.generation}")
    interval = heartbeat_interval(row)
    beat = row.last_heartbeat or row.started_at or row.updated_at
    silent = (now - beat).total_seconds()
    if silent > 2 * max(interval, HEARTBEAT_TICK) + HEARTBEAT_SLACK:
        return Health(UNHEALTHY, f"no heartbeat for {silent:.0f}s (interval {interval:g}s)")
    return Health(HEALTHY, None)


def _stopped_reason(row: Any) -> str:
    if row.status == DaemonStatus.ERROR:
        return f"stopped after an error: {row.last_error or 'unknown error'}"
    if row.status in LIVE_STATES:
        return "stopping"
    return "disabled" if not row.enabled else "stopped"


def uptime_seconds(row: Any, now: datetime) -> float | None:
    if row.status != DaemonStatus.RUNNING or row.started_at is None:
        return None
    return round(max((now - row.started_at).total_seconds(), 0.0), 3)


def present(row: Any, lease: int | None, now: datetime) -> dict[str, Any]:
    """The daemon dict plus ``health``, ``health_reason`` and ``uptime_seconds``."""
    health = daemon_health(row, lease, now)
    return {
        **daemon_to_dict(row),
        "health": health.state,
        "health_reason": health.reason,
        "uptime_seconds": uptime_seconds(row, now),
    }


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
) -> list[dict[str, Any]]:
    """Log lines of one daemon, ordered by id (newest first unless ``order="asc"``).

    ``level`` keeps that level and the more severe ones; ``after_id``/``before_id`` page by id
    (exclusive); ``limit`` is capped at ``MAX_LIMIT``."""
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
