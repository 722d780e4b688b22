"""Pydantic models of the API's inputs: query parameters and request bodies (responses are in
``stashhog.api.responses``).

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
