"""The daemons there are: the types they are created from, creating them, deleting them.

A registered type is its own template (systemd's ``foo@.service``): its configuration schema
(pydantic's JSON Schema: types, defaults, bounds, descriptions, enums), the defaults derived
from it, and the settings a new daemon of that type starts with. ``DaemonSettings`` is the one
schema of the operator-editable row fields (restart policy, budget, auto-start…): create and
update validate with it, and the panel generates its Settings form from its JSON Schema.

A delete is refused unless no instance can be alive (STOPPED or ERROR); it runs under the
row's lock, so it cannot race a start into an instance without a row, and an instance that
was dispatched anyway finds its row gone at its claim and exits (fencing). Logs and job history
go with the row (ON DELETE CASCADE); the jobs it launched stay, unlinked (ON DELETE SET NULL).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from stashhog.auth import audit
from stashhog.auth.actor import SYSTEM, current_actor
from stashhog.daemons.config import DaemonConfig, validate_configuration
from stashhog.daemons.registry import daemon_classes
from stashhog.errors import Conflict, Invalid, NotFound
from stashhog.events import EventType, publish
from stashhog.extensions import db
from stashhog.models import Daemon, RestartPolicy
from stashhog.models.enums import STOPPED_STATES
from stashhog.services.daemon_audit import audited, note_in_daemon_log, who
from stashhog.services.daemon_configuration import clean_name, merge_configuration
from stashhog.services.daemon_health import present
from stashhog.services.daemon_queries import find_daemon_row

daemons = Daemon.__table__


class DaemonSettings(BaseModel):
    """The operator's settings of one daemon, beside its type's configuration."""

    model_config = ConfigDict(extra="forbid", use_enum_values=True)

    enabled: StrictBool = Field(True, description="A disabled daemon cannot be started.")
    auto_start: StrictBool = Field(
        False, description="Start it when the cluster starts (the first supervisor pass)."
    )
    restart_policy: RestartPolicy = Field(
        RestartPolicy.ON_FAILURE,
        description="When the supervisor restarts it: always, on-failure (after a crash) or never.",
    )
    max_restarts: StrictInt = Field(
        5, ge=0, le=1000, description="Crash restarts allowed before it stays in ERROR."
    )
    restart_window: StrictInt = Field(
        600,
        ge=10,
        le=604800,
        description="Seconds of healthy running after which the restart budget is full again.",
    )
    log_max_lines: StrictInt | None = Field(
        None, ge=100, le=10**10,
        description="Log lines kept for this daemon (older ones are pruned); "
        "empty: the global LOG_MAX_LINES.",
    )  # fmt: skip
    log_max_age_days: StrictInt | None = Field(
        None, ge=1, le=3650,
        description="Days its log lines are kept; empty: the global LOG_MAX_AGE_DAYS.",
    )  # fmt: skip


SETTING_NAMES = tuple(DaemonSettings.model_fields)


def settings_schema() -> dict[str, Any]:
    return DaemonSettings.model_json_schema()


def default_configuration(schema: type[DaemonConfig]) -> dict[str, Any]:
    """Every key of the type's configuration at its default, as JSON."""
    return validate_configuration(schema, {}).model_dump(mode="json")


def daemon_types() -> list[dict[str, Any]]:
    """Every registered type, by name, with its schema and the defaults a new daemon gets."""
    return [describe_type(name, cls) for name, cls in sorted(daemon_classes().items())]


def describe_type(name: str, cls) -> dict[str, Any]:
    settings = DaemonSettings(**getattr(cls, "default_settings", {}))
    return {
        "type": name,
        "description": cls.description,
        "config_schema": cls.Config.model_json_schema(),
        "default_configuration": default_configuration(cls.Config),
        "default_settings": settings.model_dump(mode="json"),
    }


def create_daemon(
    name: Any, daemon_type: str, configuration: dict | None, settings: DaemonSettings
) -> dict[str, Any]:
    """A new, STOPPED daemon of a registered type; publishes ``daemon_created``."""
    with audit.action("daemon.create", "daemon", name=str(name), type=daemon_type) as entry:
        data = _create(name, daemon_type, configuration, settings)
        entry.target(data["id"], data["name"])
    actor = current_actor()
    if actor is not SYSTEM:
        note_in_daemon_log(data["id"], f"Created by {who(actor)}")
    publish(EventType.DAEMON_CREATED, data["id"], daemon=data)
    return data


def _create(name: Any, daemon_type: str, configuration: dict | None, settings) -> dict:
    name = clean_name(name)
    if daemon_type not in daemon_classes():
        raise Invalid(f"unknown daemon type {daemon_type!r}", key="type")
    stored = merge_configuration(daemon_type, {}, configuration or {})
    daemon = Daemon(name=name, type=daemon_type, configuration=stored, **settings.model_dump())
    db.session.add(daemon)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise Conflict(f"a daemon named {name!r} already exists", key="name") from None
    return present(find_daemon_row(daemon.id), None, datetime.now(UTC))


@audited("delete")
def delete_daemon(ref: uuid.UUID | str) -> dict[str, Any]:
    """Delete a daemon that no instance can be running; returns what it was."""
    daemon_id = find_daemon_row(ref).id
    with db.engine.begin() as conn:
        query = select(daemons).where(daemons.c.id == daemon_id).with_for_update()
        row = conn.execute(query).first()
        if row is None:
            raise NotFound(f"no daemon {str(ref)!r}")
        if row.status not in STOPPED_STATES:
            raise Conflict(
                f"daemon {row.name!r} is {row.status}: stop it first, then delete it",
                status_now=row.status,
            )
        conn.execute(delete(daemons).where(daemons.c.id == daemon_id))
    data = present(row, None, datetime.now(UTC))
    publish(EventType.DAEMON_DELETED, data["id"], name=data["name"])
    return data
