"""Pydantic models of the API: query parameters, request bodies and responses.

They are the single source for both input validation (``stashhog.api.openapi.route`` parses
every request with them) and the OpenAPI document. Inputs are strict: unknown parameters or
fields are refused, and bodies must be JSON objects of the declared types.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Union

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    StrictBool,
    StrictInt,
    TypeAdapter,
    create_model,
    field_validator,
)

from stashhog.jobs import get_job_spec, registered_job_types
from stashhog.models import (
    DaemonJobAction,
    DaemonStatus,
    DesiredState,
    JobStatus,
    JobType,
    LimitAction,
    LogLevel,
    RestartPolicy,
)
from stashhog.services.daemon_configuration import NULLABLE_SETTINGS
from stashhog.services.daemon_limits import CPU_WINDOW, CpuPercent, MemoryMB

MAX_ID = 2**63 - 1  # daemon_logs.id is a BIGINT
RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")


def _rfc3339(value: Any) -> Any:
    """Only an RFC 3339 date-time with an offset: pydantic alone would also take "0" (epoch)
    or a date."""
    if not isinstance(value, str) or not RFC3339.fullmatch(value.upper()):
        raise ValueError("expected an ISO 8601 date-time with timezone, e.g. 2030-01-01T00:00:00Z")
    try:
        # In UTC: PostgreSQL refuses offsets beyond 15:59 that RFC 3339 allows.
        return datetime.fromisoformat(value.upper()).astimezone(UTC)
    except OverflowError:
        raise ValueError("date-time out of range") from None


Timestamp = Annotated[AwareDatetime, BeforeValidator(_rfc3339)]
NAME_PATTERN = r"^[^\s\x00]([^\x00\n\r]*[^\s\x00])?$"


# -- query parameters (parsed from strings, so not strict) ---------------------------------


class Query(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NoQuery(Query):
    """An operation without query parameters refuses any."""


class ActionQuery(Query):
    wait: float = Field(
        0, ge=0, le=30, description="Seconds to wait for the daemon to settle (RUNNING/STOPPED)."
    )


class StopQuery(ActionQuery):
    cascade: bool = Field(
        True,
        description="Stop the daemons that depend on it first (true); false refuses with "
        "409 naming them while any of them is up.",
    )


class LogsQuery(Query):
    level: LogLevel | None = Field(None, description="This level and the more severe ones.")
    since: Timestamp | None = Field(None, description="Lines created at or after this time.")
    after_id: int | None = Field(None, ge=0, le=MAX_ID, description="Lines with a greater id.")
    before_id: int | None = Field(None, ge=1, le=MAX_ID, description="Lines with a smaller id.")
    limit: int = Field(100, ge=1, le=1000, description="At most this many lines.")
    order: Literal["desc", "asc"] = Field(
        "desc", description="By id: newest first (desc) or oldest first (asc, for catching up)."
    )
    generation: int | None = Field(None, ge=0, le=MAX_ID, description="Only this run's lines.")
    q: str | None = Field(
        None, min_length=1, max_length=500,
        description='Search: every word must occur; "quoted phrases" as written; -word '
        "excludes (PostgreSQL full text, simple configuration).",
    )  # fmt: skip

    @field_validator("level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


class HistoryQuery(Query):
    action: DaemonJobAction | None = Field(None, description="Only this action.")
    since: Timestamp | None = Field(None, description="Entries at or after this time.")
    limit: int = Field(100, ge=1, le=1000, description="At most this many entries.")


class JobsQuery(Query):
    status: JobStatus | None = Field(None, description="Only jobs in this status.")
    type: JobType | None = Field(None, description="Only jobs of this type.")
    daemon_id: uuid.UUID | None = Field(None, description="Only jobs launched by this daemon.")
    limit: int = Field(50, ge=1, le=500, description="At most this many jobs, newest first.")


# -- request bodies (JSON, strict) -----------------------------------------------------------


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class DaemonUpdate(Body):
    """Fields left out stay as they are, and so do fields sent as null, except the resource
    limits and log caps, which null clears (no limit; the global log cap)."""

    configuration: dict[str, JsonValue] | None = Field(
        None,
        description="Keys merged over the stored configuration and validated against the "
        "daemon type's schema (see default-config); a key set to null is reset to its default.",
    )
    enabled: StrictBool | None = Field(None, description="A disabled daemon refuses to start.")
    auto_start: StrictBool | None = Field(None, description="Start when the cluster starts.")
    name: str | None = Field(None, description="Unique, 1-255 characters once trimmed, not a UUID.")
    restart_policy: RestartPolicy | None = Field(
        None,
        strict=False,  # a JSON string naming the policy
        description="When the supervisor restarts it: always, on-failure or never.",
    )
    max_restarts: StrictInt | None = Field(
        None, ge=0, le=1000, description="Crash restarts allowed before it stays in ERROR."
    )
    restart_window: StrictInt | None = Field(
        None, ge=10, le=604800, description="Seconds of healthy running that refill the budget."
    )
    log_max_lines: StrictInt | None = Field(
        None, ge=100, le=10**10, description="Log lines kept for it; null: LOG_MAX_LINES."
    )
    log_max_age_days: StrictInt | None = Field(
        None, ge=1, le=3650, description="Days its log lines are kept; null: LOG_MAX_AGE_DAYS."
    )
    max_memory_mb: MemoryMB | None = Field(
        None, description="RSS (MB) its process may use; null clears the limit."
    )
    max_cpu_percent: CpuPercent | None = Field(
        None, description=f"CPU % (100 = one core), mean of {CPU_WINDOW} samples; null clears it."
    )
    limit_action: LimitAction | None = Field(
        None,
        strict=False,  # a JSON string naming the action
        description="On a breach: restart (counted as a crash), stop or warn.",
    )

    depends_on: list[str] | None = Field(
        None, max_length=100,
        description="The ids of the daemons it needs (replaces the list; [] for none). "
        "Unknown ids, itself and cycles are refused (422, the cycle named).",
    )  # fmt: skip

    def cleared(self) -> list[str]:
        """The settings sent as an explicit null that null means something for (no limit,
        the global log cap)."""
        return [key for key in NULLABLE_SETTINGS
                if key in self.model_fields_set and getattr(self, key) is None]  # fmt: skip


class CancelJob(Body):
    reason: str | None = Field(None, max_length=1000, description="Recorded with the job.")


def _job_create_model(job_type: JobType) -> type[Body]:
    spec = get_job_spec(job_type)
    name = "Create" + "".join(part.title() for part in str(job_type).split("_")) + "Job"
    return create_model(
        name,
        __base__=Body,
        type=(Literal[str(job_type)], ...),  # type: ignore[valid-type]
        metadata=(spec.metadata_model | None, Field(None, description="Defaults if left out.")),
    )


# One model per registered job type, told apart by ``type``.
JobCreate = TypeAdapter(
    Annotated[
        Union[tuple(_job_create_model(t) for t in registered_job_types())],  # noqa: UP007
        Field(discriminator="type"),
    ]
)


# -- responses ---------------------------------------------------------------------------------


class Out(BaseModel):
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="allow")

    code: str = Field(description="Machine-readable, e.g. not_found, invalid_configuration.")
    message: str
    key: str | None = Field(None, description="The offending body key, when there is one.")
    parameter: str | None = Field(None, description="The offending query parameter.")


class ErrorResponse(Out):
    error: ErrorDetail


class DaemonOut(Out):
    id: uuid.UUID
    name: str
    type: str
    enabled: bool
    auto_start: bool
    status: DaemonStatus
    desired_state: DesiredState
    configuration: dict[str, JsonValue] = Field(description="As stored (defaults not filled).")
    started_at: AwareDatetime | None
    stopped_at: AwareDatetime | None
    last_heartbeat: AwareDatetime | None
    status_line: str | None = Field(description="What the daemon says it is doing now.")
    last_error: str | None
    log_lines_dropped: int = Field(
        description="Log lines the current (or last) run lost: dropped while it logged faster "
        "than the database absorbs, or still unwritten when its stop timed out."
    )
    generation: int
    task_id: str | None = Field(description="The current instance's Celery task id (Flower).")
    worker: str | None
    worker_pid: int | None
    restart_policy: RestartPolicy
    max_restarts: int
    restart_window: int = Field(description="Seconds of healthy running that refill the budget.")
    restart_count: int
    log_max_lines: int | None = Field(description="Its log cap; null: the global default.")
    log_max_age_days: int | None = Field(description="Its log age cap; null: the default.")
    max_memory_mb: int | None = Field(description="Its RSS limit in MB; null: none.")
    max_cpu_percent: float | None = Field(description="Its CPU % limit; null: none.")
    limit_action: LimitAction = Field(description="What a breach of a limit does.")
    depends_on: list[uuid.UUID] = Field(
        description="The daemons it needs: RUNNING with a heartbeat before it starts."
    )
    created_at: AwareDatetime
    updated_at: AwareDatetime
    etag: str = Field(
        description="The ETag of its name, settings and configuration: send it as If-Match "
        "with a PUT so an edit made meanwhile by someone else is not overwritten (412)."
    )
    health: Literal["healthy", "unhealthy", "stopped"]
    health_reason: str | None
    heartbeat_deadline: AwareDatetime | None = Field(
        description="While it should be starting or running: when it turns unhealthy unless "
        "its next heartbeat (while STARTING, a worker's claim) arrives first. A page compares "
        "it with its clock."
    )
    uptime_seconds: float | None
    waiting_for: list[str] = Field(
        description="While it should run and does not: the names of the daemons it depends "
        "on that are not RUNNING with a heartbeat yet (it starts once they are)."
    )


class DaemonList(Out):
    daemons: list[DaemonOut]


class DaemonAction(Out):
    daemon: DaemonOut
    changed: bool = Field(description="False when the daemon already was in that state.")
    message: str
    dependencies_started: list[str] = Field(
        default_factory=list,
        description="start: the daemons it depends on that were started first, in order.",
    )
    dependents_stopped: list[str] = Field(
        default_factory=list,
        description="stop, restart: the daemons depending on it stopped first, in order.",
    )
    dependents_restarted: list[str] = Field(
        default_factory=list,
        description="restart: the dependents started again (once it is ready), in order.",
    )


class DaemonUpdated(Out):
    daemon: DaemonOut
    updated: list[str] = Field(description="The fields that changed.")
    restart_required: bool = Field(
        description="The daemon runs with its old configuration until restarted."
    )


class ConfigKey(Out):
    default: JsonValue
    description: str
    type: str


class DefaultConfig(Out):
    daemon_id: uuid.UUID
    type: str
    configuration: dict[str, ConfigKey]
    schema_: dict[str, JsonValue] = Field(
        alias="schema", description="The full JSON Schema of the type's configuration."
    )
    default_configuration: dict[str, JsonValue]


class LogLine(Out):
    id: int
    daemon_id: uuid.UUID
    level: LogLevel
    message: str
    created_at: AwareDatetime
    generation: int | None
    seq: int | None


class LogList(Out):
    logs: list[LogLine]


class HistoryEntry(Out):
    id: uuid.UUID
    daemon_id: uuid.UUID
    job_id: uuid.UUID | None
    action: DaemonJobAction
    reason: str | None
    created_at: AwareDatetime
    job_type: str | None
    job_status: JobStatus | None


class HistoryList(Out):
    history: list[HistoryEntry]


class HealthEntry(Out):
    id: uuid.UUID
    name: str
    status: DaemonStatus
    last_heartbeat: AwareDatetime | None


class HealthyEntry(HealthEntry):
    uptime_seconds: float | None


class UnhealthyEntry(HealthEntry):
    reason: str


class HealthReport(Out):
    healthy: list[HealthyEntry]
    unhealthy: list[UnhealthyEntry]
    stopped: list[UnhealthyEntry]
    checked_at: AwareDatetime


class BulkError(Out):
    daemon_id: uuid.UUID
    name: str
    error: str


class BulkResult(Out):
    requested: int = Field(description="Daemons the action applied to.")
    changed: int = Field(description="Daemons whose state the action changed.")
    errors: list[BulkError]
    skipped: int = Field(0, description="start-all: disabled daemons, left alone.")


class JobOut(Out):
    id: uuid.UUID
    type: str
    status: JobStatus
    progress: int = Field(ge=0, le=100)
    message: str | None
    result: JsonValue
    error: str | None
    metadata: dict[str, JsonValue]
    celery_task_id: str | None
    daemon_id: uuid.UUID | None
    created_at: AwareDatetime
    started_at: AwareDatetime | None
    completed_at: AwareDatetime | None
    updated_at: AwareDatetime


class JobList(Out):
    jobs: list[JobOut]


class JobAction(Out):
    job: JobOut
    changed: bool
    message: str
