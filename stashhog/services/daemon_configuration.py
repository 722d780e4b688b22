"""Daemon configuration: the defaults of a daemon's type, and partial updates of a daemon.

Configuration updates are partial: the given keys are merged over the stored configuration and
the result is validated against the daemon type's schema before anything is written. A key set
to null is removed from the stored configuration, so the type's default applies again. Only
keys that were stored or given are stored (defaults are not copied in), in validated form.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from stashhog.daemons import describe, get_daemon_class
from stashhog.daemons.config import (
    SECRET_MASK,
    DaemonConfig,
    secret_keys,
    validate_configuration,
)
from stashhog.errors import (
    ConfigurationError,
    Conflict,
    Invalid,
    NotFound,
    PreconditionFailed,
    UnknownDaemonType,
)
from stashhog.extensions import db
from stashhog.models import DesiredState
from stashhog.models.enums import LIVE_STATES
from stashhog.serializers import daemon_to_dict, settings_etag
from stashhog.services import daemon_dependencies as dependencies
from stashhog.services.daemon_audit import audited_update
from stashhog.services.daemon_health import present
from stashhog.services.daemon_limits import LIMIT_SETTINGS
from stashhog.services.daemon_queries import find_daemon_row
from stashhog.services.daemon_state import change_daemon, daemons, publish_change
from stashhog.services.lease import lease_holders

MAX_NAME = 255


def default_config(ref: uuid.UUID | str) -> dict[str, dict[str, Any]]:
    """Each configuration key of the daemon's type: default, description and JSON type."""
    schema = get_daemon_class(find_daemon_row(ref).type).Config
    defaults = schema().model_dump(mode="json")  # also fills keys with a default_factory
    return {key: {**info, "default": defaults[key]} for key, info in describe(schema).items()}


def merge_configuration(daemon_type: str, stored: Any, patch: Mapping[str, Any]) -> dict:
    """``patch`` over ``stored`` (null removes a key), validated; ``Invalid`` names the key.
    A secret key sent back as ``SECRET_MASK`` (what it was shown as) keeps its stored value."""
    if not isinstance(patch, Mapping):
        raise Invalid(
            "configuration must be a JSON object", code="invalid_configuration", key="configuration"
        )
    schema = get_daemon_class(daemon_type).Config
    secret = secret_keys(schema)
    merged = dict(stored) if isinstance(stored, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif not (key in secret and value == SECRET_MASK):
            merged[key] = value
    validated = _validate(schema, merged)
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


SETTING_KEYS = (
    "enabled", "auto_start", "restart_policy", "max_restarts", "restart_window",
    "log_max_lines", "log_max_age_days", "max_memory_mb", "max_cpu_percent", "limit_action",
    "depends_on",
)  # fmt: skip
# Settings whose null means something ("no limit", "the global default"): ``clear`` names them.
NULLABLE_SETTINGS = ("log_max_lines", "log_max_age_days", "max_memory_mb", "max_cpu_percent")


@audited_update
def update_daemon(
    ref: uuid.UUID | str,
    *,
    configuration: Mapping[str, Any] | None = None,
    name: str | None = None,
    if_match: str | None = None,
    clear: Iterable[str] = (),
    **settings: Any,
) -> dict[str, Any]:
    """Partial update of the configuration, the name and the settings (``SETTING_KEYS``);
    ``None`` leaves a field as it is, and ``clear`` names ``NULLABLE_SETTINGS`` to set to
    null (no limit, or the global default). With ``if_match`` (an ETag from ``settings_etag``) the
    update is refused (412) if someone changed the daemon since. Returns ``{"daemon",
    "updated", "restart_required"}``: a running daemon keeps its configuration until
    restarted."""
    daemon_id = find_daemon_row(ref).id
    # Read before writing: with Redis down the update is refused (503) rather than written
    # and then answered with an error.
    lease = lease_holders([daemon_id])[str(daemon_id)]
    given = {key: value for key, value in settings.items() if value is not None}
    if unknown := set(given) - set(SETTING_KEYS):
        raise Invalid(f"unknown setting {sorted(unknown)[0]!r}", key=sorted(unknown)[0])
    given.update(_checked_limits(given))
    given.update(_cleared(clear, given))
    try:
        with db.engine.begin() as conn:
            if "depends_on" in given:  # before the row's lock, in the order deletes take them
                dependencies.lock_graph(conn)
            # Locked, so concurrent partial updates merge instead of overwriting each other.
            row = conn.execute(
                select(daemons).where(daemons.c.id == daemon_id).with_for_update()
            ).first()
            if row is None:
                raise NotFound(f"no daemon {str(ref)!r}")
            _check_precondition(row, if_match)
            values = _changes(conn, row, configuration, name, given)
            data = change_daemon(row.id, conn=conn, **values) if values else None
    except IntegrityError:
        raise Conflict(f"a daemon named {name!r} already exists", key="name") from None
    fresh = find_daemon_row(daemon_id)
    if data is not None:
        publish_change(fresh, status_changed=False)
    restart_required = "configuration" in values and _restart_needed(row, values)
    return {
        "daemon": present(fresh, lease, datetime.now(UTC)),
        "updated": sorted(values),
        "restart_required": restart_required,
    }


def _check_precondition(row, if_match: str | None) -> None:
    if if_match is None or if_match.strip() == "*":
        return
    current = settings_etag(daemon_to_dict(row))
    if current not in {tag.strip().removeprefix("W/") for tag in if_match.split(",")}:
        raise PreconditionFailed(
            f"daemon {row.name!r} was changed since you read it; reload it and apply your "
            "change again",
            etag=current,
        )


def clean_name(name: Any) -> str:
    """A daemon name, trimmed: 1-255 characters on one line, and never one that reads as a
    UUID (so a name and an id can never be confused where either is accepted)."""
    if not isinstance(name, str) or not name.strip():
        raise Invalid("name must not be blank", key="name")
    name = name.strip()
    if len(name) > MAX_NAME or any(c in name for c in "\x00\n\r"):
        raise Invalid(f"name must be 1-{MAX_NAME} characters on one line", key="name")
    try:
        uuid.UUID(name)
    except ValueError:
        return name
    raise Invalid("name must not look like a UUID (ids and names would collide)", key="name")


def _changes(conn, row, configuration, name, settings: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if configuration is not None:
        merged = merge_configuration(row.type, row.configuration, configuration)
        if merged != row.configuration:
            values["configuration"] = merged
    for key, value in settings.items():
        if key == "depends_on":
            value = dependencies.checked_depends_on(value, row.id, dependencies.load_graph(conn))
        if value != getattr(row, key):
            values[key] = str(value) if key in ("restart_policy", "limit_action") else value
    if name is not None and (name := clean_name(name)) != row.name:
        taken = conn.execute(
            select(daemons.c.id).where(daemons.c.name == name, daemons.c.id != row.id)
        ).first()
        if taken is not None:
            raise Conflict(f"a daemon named {name!r} already exists", key="name")
        values["name"] = name
    return values


def _checked_limits(given: dict[str, Any]) -> dict[str, Any]:
    """The resource-limit settings in ``given``, validated as on create (bounds, the action)."""
    from stashhog.services.daemon_catalog import DaemonSettings  # it imports this module

    limits = {key: given[key] for key in LIMIT_SETTINGS if key in given}
    try:
        return DaemonSettings(**limits).model_dump(include=set(limits))
    except ValidationError as exc:
        error = exc.errors()[0]
        key = ".".join(str(part) for part in error["loc"])
        raise Invalid(f"{key}: {error['msg']}", key=key) from None


def _cleared(clear: Iterable[str], given: dict[str, Any]) -> dict[str, None]:
    for key in clear:
        if key not in NULLABLE_SETTINGS:
            raise Invalid(f"setting {key!r} cannot be cleared (set to null)", key=key)
        if key in given:
            raise Invalid(f"setting {key!r} both set and cleared", key=key)
    return dict.fromkeys(clear)


def _restart_needed(row, values: dict) -> bool:
    running = row.status in LIVE_STATES and row.desired_state == DesiredState.RUNNING
    before = _effective(row.type, row.configuration)
    return running and before != _effective(row.type, values["configuration"])
