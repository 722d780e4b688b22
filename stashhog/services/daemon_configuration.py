"""Daemon configuration: the defaults of a daemon's type, and partial updates of a daemon.

Configuration updates are partial: the given keys are merged over the stored configuration and
the result is validated against the daemon type's schema before anything is written. A key set
to null is removed from the stored configuration, so the type's default applies again. Only
keys that were stored or given are stored (defaults are not copied in), in validated form.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from stashhog.daemons import describe, get_daemon_class
from stashhog.daemons.config import DaemonConfig, validate_configuration
from stashhog.errors import ConfigurationError, Conflict, Invalid, NotFound, UnknownDaemonType
from stashhog.extensions import db
from stashhog.models import DesiredState
from stashhog.models.enums import LIVE_STATES
from stashhog.services.daemon_health import present
from stashhog.services.daemon_queries import find_daemon_row
from stashhog.services.daemon_state import change_daemon, daemons, publish_change
from stashhog.services.lease import lease_holders


def default_config(ref: uuid.UUID | str) -> dict[str, dict[str, Any]]:
    """Each configuration key of the daemon's type: default, description and JSON type."""
    schema = get_daemon_class(find_daemon_row(ref).type).Config
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
    validated = _validate(get_daemon_class(daemon_type).Config, merged)
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
    fresh = find_daemon_row(daemon_id)
    if data is not None:
        publish_change(fresh, status_changed=False)
    restart_required = "configuration" in values and _restart_needed(row, values)
    return {
        "daemon": present(fresh, lease, datetime.now(UTC)),
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
