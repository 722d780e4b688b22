"""Pydantic models of the API's responses: what each route answers, as the OpenAPI document
describes it (inputs, strict, are in ``stashhog.api.schemas``)."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
)

from stashhog.models import (
    DaemonJobAction,
    DaemonStatus,
    DesiredState,
    JobStatus,
    LimitAction,
    LogLevel,
    RestartPolicy,
)


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
    total: int = Field(description="How many daemons there are (over every page).")
    limit: int | None = Field(description="The page size asked for; null: every daemon.")
    offset: int = Field(description="How many daemons, by name, come before this page.")


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
