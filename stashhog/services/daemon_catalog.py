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
from stashhog.models import Daemon, LimitAction, RestartPolicy
from stashhog.models.enums import STOPPED_STATES
from stashhog.services import daemon_dependencies as dependencies
from stashhog.services.daemon_audit import audited, note_in_daemon_log, who
from stashhog.services.daemon_configuration import clean_name, merge_configuration
from stashhog.services.daemon_dependencies import MAX_DEPENDENCIES
from stashhog.services.daemon_health import present
from stashhog.services.daemon_limits import CPU_WINDOW, CpuPercent, MemoryMB
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
    max_memory_mb: MemoryMB | None = Field(
        None, description="Resident memory (RSS, MB) its process may use; empty: no limit."
    )
    max_cpu_percent: CpuPercent | None = Field(
        None,
        description=f"CPU % (100 = one core) its process may use, averaged over {CPU_WINDOW} "
        "samples of METRICS_INTERVAL; empty: no limit.",
    )
    limit_action: LimitAction = Field(
        LimitAction.RESTART,
        description="On a breach of max_memory_mb or max_cpu_percent: restart (as a crash, "
        "counted in the restart budget), stop, or warn (log it only).",
    )
    depends_on: list[str] = Field(
        default_factory=list,
        max_length=MAX_DEPENDENCIES,
        description="The daemons it needs (their ids): each starts first and must be running "
        "with a heartbeat before this one starts; this one stops before them.",
    )


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
    values = settings.model_dump()
    if values["depends_on"]:
        values["depends_on"] = _checked_dependencies(values["depends_on"])
    daemon = Daemon(name=name, type=daemon_type, configuration=stored, **values)
    db.session.add(daemon)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise Conflict(f"a daemon named {name!r} already exists", key="name") from None
    return present(find_daemon_row(daemon.id), None, datetime.now(UTC))


def _checked_dependencies(depends_on: list[str]) -> list[str]:
    """Checked under the graph's lock, held until the new row is committed (see
    ``delete_daemon``)."""
    conn = db.session.connection()
    try:
        dependencies.lock_graph(conn)
        return dependencies.checked_depends_on(depends_on, None, dependencies.load_graph(conn))
    except Invalid:
        db.session.rollback()
        raise


@audited("delete")
def delete_daemon(ref: uuid.UUID | str) -> dict[str, Any]:
    """Delete a daemon that no instance can be running; returns what it was."""
    daemon_id = find_daemon_row(ref).id
    with db.engine.begin() as conn:
        dependencies.lock_graph(conn)  # no daemon starts to depend on it meanwhile
        query = select(daemons).where(daemons.c.id == daemon_id).with_for_update()
        row = conn.execute(query).first()
        if row is None:
            raise NotFound(f"no daemon {str(ref)!r}")
        dependencies.refuse_delete_if_needed(conn, row)
        if row.status not in STOPPED_STATES:
            raise Conflict(
                f"daemon {row.name!r} is {row.status}: stop it first, then delete it",
                status_now=row.status,
            )
        conn.execute(delete(daemons).where(daemons.c.id == daemon_id))
    data = present(row, None, datetime.now(UTC))
    publish(EventType.DAEMON_DELETED, data["id"], name=data["name"])
    return data
