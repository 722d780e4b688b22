"""The daemons façade the API, CLI and pages call: control, queries, configuration, bulk actions.

Configuration updates are partial: the given keys are merged over the stored configuration and
the result is validated against the daemon type's schema before anything is written. A key set
to null is removed from the stored configuration, so the type's default applies again. Only
keys that were stored or given are stored (defaults are not copied in), in validated form.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from stashhog.daemons import ConfigurationError, UnknownDaemonType, describe, get_daemon_class
from stashhog.daemons.config import DaemonConfig, validate_configuration
from stashhog.extensions import db
from stashhog.models import DesiredState
from stashhog.models.enums import LIVE_STATES, STOPPED_STATES
from stashhog.services.daemon_control import (
    find_daemon_row,
    restart_daemon,
    start_daemon,
    stop_daemon,
    wait_for_status,
)
from stashhog.services.daemon_queries import (
    MAX_LIMIT,
    daemon_health,
    get_daemon,
    get_history,
    get_logs,
    health_report,
    list_daemons,
    present,
)
from stashhog.services.daemon_state import change_daemon, daemons, publish_change
from stashhog.services.errors import Conflict, Invalid, NotFound, ServiceError
from stashhog.services.lease import lease_holders

__all__ = [
    "MAX_LIMIT",
    "daemon_health",
    "default_config",
    "get_daemon",
    "get_history",
    "get_logs",
    "health_report",
    "list_daemons",
    "restart_all",
    "restart_daemon",
    "start_all",
    "start_daemon",
    "stop_all",
    "stop_daemon",
    "update_daemon",
]


# -- configuration ---------------------------------------------------------------------------


def config_schema(daemon_type: str) -> type[DaemonConfig]:
    try:
        return get_daemon_class(daemon_type).Config
    except UnknownDaemonType:
        raise Conflict(f"daemon type {daemon_type!r} is not installed") from None


def default_config(ref: uuid.UUID | str) -> dict[str, dict[str, Any]]:
    """Each configuration key of the daemon's type: default, description and JSON type."""
    schema = config_schema(find_daemon_row(ref).type)
    defaults = schema().model_dump(mode="json")  # also fills keys with a default_factory
    return {key: {**info, "default": defaults[key]} for key, info in describe(schema).items()}


def merge_configuration(daemon_type: str, stored: Any, patch: Mapping[str, Any]) -> dict:
    """``patch`` over ``stored`` (null removes a key), validated; ``Invalid`` names the key."""
    if not isinstance(patch, Mapping):
        raise Invalid(
            "configuration must be a JSON object", code="invalid_configuration", key="configuration"
        )
    merged = dict(stored) if isinstance(stored, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    validated = _validate(config_schema(daemon_type), merged)
    return validated.model_dump(mode="json", include=set(merged))


def _validate(schema: type[DaemonConfig], configuration: dict) -> DaemonConfig:
    try:
        return validate_configuration(schema, configuration)
    except ConfigurationError as exc:
        raise Invalid(
            f"invalid configuration: {exc}", code="invalid_configuration", key=exc.key
        ) from None


def _effective(daemon_type: str, configuration: Any) -> dict | None:
    try:
        schema = get_daemon_class(daemon_type).Config
        return validate_configuration(schema, configuration).model_dump(mode="json")
    except (UnknownDaemonType, ConfigurationError):
        return None


def update_daemon(
    ref: uuid.UUID | str,
    *,
    configuration: Mapping[str, Any] | None = None,
    enabled: bool | None = None,
    auto_start: bool | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    """Partial update; ``None`` leaves a field as it is. Returns ``{"daemon", "updated",
    "restart_required"}``: a running daemon keeps its configuration until restarted."""
    daemon_id = find_daemon_row(ref).id
    # Read before writing: with Redis down the update is refused (503) rather than written
    # and then answered with an error.
    lease = lease_holders([daemon_id])[str(daemon_id)]
    try:
        with db.engine.begin() as conn:
            # Locked, so concurrent partial updates merge instead of overwriting each other.
            row = conn.execute(
                select(daemons).where(daemons.c.id == daemon_id).with_for_update()
            ).first()
            if row is None:
                raise NotFound(f"no daemon {str(ref)!r}")
            values = _changes(conn, row, configuration, enabled, auto_start, name)
            data = change_daemon(row.id, conn=conn, **values) if values else None
    except IntegrityError:
        raise Conflict(f"a daemon named {name!r} already exists") from None
    if data is not None:
        publish_change(data, status_changed=False)
    restart_required = "configuration" in values and _restart_needed(row, values)
    return {
        "daemon": present(find_daemon_row(daemon_id), lease, datetime.now(UTC)),
        "updated": sorted(values),
        "restart_required": restart_required,
    }


def _changes(conn, row, configuration, enabled, auto_start, name) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if configuration is not None:
        merged = merge_configuration(row.type, row.configuration, configuration)
        if merged != row.configuration:
            values["configuration"] = merged
    if enabled is not None and enabled != row.enabled:
        values["enabled"] = enabled
    if auto_start is not None and auto_start != row.auto_start:
        values["auto_start"] = auto_start
    if name is not None and name != row.name:
        if not name.strip():
            raise Invalid("name must not be blank", key="name")
        taken = conn.execute(
            select(daemons.c.id).where(daemons.c.name == name, daemons.c.id != row.id)
        ).first()
        if taken is not None:
            raise Conflict(f"a daemon named {name!r} already exists")
        values["name"] = name
    return values


def _restart_needed(row, values: dict) -> bool:
    running = row.status in LIVE_STATES and row.desired_state == DesiredState.RUNNING
    before = _effective(row.type, row.configuration)
    return running and before != _effective(row.type, values["configuration"])


# -- bulk actions --------------------------------------------------------------------------


def start_all() -> dict[str, Any]:
    """Start every enabled daemon (disabled ones are counted in ``skipped``)."""
    rows = _rows()
    result = _each([row for row in rows if row.enabled], start_daemon)
    result["skipped"] = sum(1 for row in rows if not row.enabled)
    return result


def stop_all() -> dict[str, Any]:
    """Stop every daemon; already stopped ones count as requested but not changed."""
    return _each(_rows(), stop_daemon)


def restart_all() -> dict[str, Any]:
    """Restart every enabled daemon that should be running: stop them all, wait (up to the
    stop timeout, once for all), then start them all."""
    targets = [r for r in _rows() if r.enabled and r.desired_state == DesiredState.RUNNING]
    stopping = _each(targets, stop_daemon)
    failed = {error["daemon_id"] for error in stopping["errors"]}
    deadline = time.monotonic() + current_app.config["STOP_TIMEOUT"] + 1
    stopped = [row for row in targets if str(row.id) not in failed]
    for row in stopped:
        remaining = max(deadline - time.monotonic(), 0.0)
        wait_for_status(row.id, STOPPED_STATES, remaining)
    starting = _each(stopped, lambda ref: start_daemon(ref, operator=True))
    return {
        "requested": len(targets),
        "changed": starting["changed"],
        "errors": stopping["errors"] + starting["errors"],
        "skipped": 0,
    }


def _rows() -> list[Any]:
    with db.engine.connect() as conn:
        return list(conn.execute(select(daemons).order_by(daemons.c.name)))


def _each(rows: list[Any], action: Callable[[uuid.UUID], dict]) -> dict[str, Any]:
    changed, errors = 0, []
    for row in rows:
        try:
            changed += bool(action(row.id)["changed"])
        except ServiceError as exc:
            errors.append({"daemon_id": str(row.id), "name": row.name, "error": exc.message})
    return {"requested": len(rows), "changed": changed, "errors": errors, "skipped": 0}
