"""A daemon's health, derived (never stored) and computed here only: the API, the CLI, the
events and the pages all show this verdict.

A daemon is *healthy* when it should run and does: its row is RUNNING, its instance holds the
Redis lease, and its heartbeat is not overdue (the runtime beats on a coroutine of its own, so
a daemon sleeping in ``self.sleep`` keeps beating); a daemon still within the start-up grace
counts as healthy, with the reason "starting". It is *unhealthy* when it should run and does
not (no live instance, an overdue heartbeat, ended in ERROR, or not picked up by a worker),
with the reason. Everything else is *stopped*, with a reason too (stopped, stopping,
disabled, after an error).

``heartbeat_deadline`` is published with every daemon so a page can tell, by its own clock,
when a daemon that went silent turns unhealthy: no event announces a heartbeat that never came.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, NamedTuple

from stashhog.daemons import get_daemon_class
from stashhog.daemons.config import DaemonConfig, validate_configuration
from stashhog.errors import ConfigurationError, UnknownDaemonType
from stashhog.models import DaemonStatus, DesiredState
from stashhog.models.enums import LIVE_STATES, RUNNING_STATES
from stashhog.serializers import daemon_to_dict, iso

HEALTHY, UNHEALTHY, STOPPED = "healthy", "unhealthy", "stopped"
# A start that no worker has picked up within this long may be dispatched again.
STARTING_GRACE = timedelta(seconds=10)
# The runtime checks its heartbeat every 0.1 s, so no heartbeat comes faster than that; the
# slack covers the database write and clock differences between worker and web hosts.
HEARTBEAT_TICK, HEARTBEAT_SLACK = 0.1, 0.5


class Health(NamedTuple):
    state: str
    reason: str | None


def heartbeat_interval(row: Any) -> float:
    """The daemon's effective ``heartbeat_interval`` (stored over defaults). A configuration
    that does not set it has its type's default: read without validating the whole
    configuration, which took most of the time of listing 1,000 daemons."""
    try:
        schema = get_daemon_class(row.type).Config
        if "heartbeat_interval" not in (row.configuration or {}):
            return schema.model_fields["heartbeat_interval"].default
        return validate_configuration(schema, row.configuration).heartbeat_interval
    except (UnknownDaemonType, ConfigurationError):
        return DaemonConfig.model_fields["heartbeat_interval"].default


def heartbeat_deadline(row: Any) -> datetime | None:
    """When the daemon turns unhealthy unless its next heartbeat (while STARTING: a worker's
    claim) arrives first; None when it should not be running."""
    if row.desired_state != DesiredState.RUNNING or row.status not in RUNNING_STATES:
        return None
    if row.status == DaemonStatus.STARTING:
        return row.updated_at + STARTING_GRACE
    beat = row.last_heartbeat or row.started_at or row.updated_at
    allowed = 2 * max(heartbeat_interval(row), HEARTBEAT_TICK) + HEARTBEAT_SLACK
    return beat + timedelta(seconds=allowed)


def depends_on_lease(row: Any) -> bool:
    """Whether the verdict reads the lease: only while the daemon should run and is RUNNING."""
    return row.desired_state == DesiredState.RUNNING and row.status == DaemonStatus.RUNNING


def daemon_health(
    row: Any, lease: int | None, now: datetime, deadline: datetime | None = None
) -> Health:
    """Healthy, unhealthy (with the reason) or stopped; ``lease`` is the holding generation;
    ``deadline``: ``heartbeat_deadline(row)`` when the caller knows it already."""
    if row.desired_state != DesiredState.RUNNING:
        return Health(STOPPED, _stopped_reason(row))
    if row.status == DaemonStatus.ERROR:
        return Health(UNHEALTHY, f"ended in error: {row.last_error or 'unknown error'}")
    if row.status == DaemonStatus.STARTING:
        if now <= (deadline or heartbeat_deadline(row)):
            return Health(HEALTHY, "starting")
        waited = (now - row.updated_at).total_seconds()
        return Health(UNHEALTHY, f"no worker has started it after {waited:.0f}s")
    if row.status != DaemonStatus.RUNNING:
        return Health(UNHEALTHY, f"should be running but is {row.status}")
    return _running_health(row, lease, now, deadline or heartbeat_deadline(row))


def _running_health(row: Any, lease: int | None, now: datetime, deadline: datetime) -> Health:
    if lease is None:
        return Health(UNHEALTHY, "no live instance: its lease has expired")
    if lease != row.generation:
        return Health(UNHEALTHY, f"lease held by generation {lease}, not {row.generation}")
    if now > deadline:
        beat = row.last_heartbeat or row.started_at or row.updated_at
        silent = (now - beat).total_seconds()
        interval = heartbeat_interval(row)
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
    """The daemon as the API and the events show it: the row's fields plus ``health``,
    ``health_reason``, ``heartbeat_deadline``, ``uptime_seconds`` and ``waiting_for`` (what
    it depends on that is not ready, while it should run and does not)."""
    return {**stored_fields(row), **live_fields(row, lease, now)}


def stored_fields(row: Any) -> dict[str, Any]:
    """The part of ``present`` that only the row decides (the same until the row changes)."""
    return {**daemon_to_dict(row), "heartbeat_deadline": iso(heartbeat_deadline(row))}


def live_fields(
    row: Any, lease: int | None, now: datetime, deadline: datetime | None = None
) -> dict[str, Any]:
    """The part of ``present`` that the lease and the clock decide (``deadline`` as for
    ``daemon_health``)."""
    # Here, not at the top: the dependency graph reads health verdicts from this module.
    from stashhog.services.daemon_dependencies import waiting_for, waiting_line

    health = daemon_health(row, lease, now, deadline)
    waiting = waiting_for(row, lease, now)
    if waiting and health.state == UNHEALTHY:
        health = Health(UNHEALTHY, waiting_line(waiting))
    return {
        "health": health.state,
        "health_reason": health.reason,
        "uptime_seconds": uptime_seconds(row, now),
        "waiting_for": waiting,
    }
