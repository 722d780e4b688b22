"""API models of runs, metrics, cross-daemon log search and alerts."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import AwareDatetime, Field, StrictBool, StrictInt, field_validator

from stashhog.api.responses import Out
from stashhog.api.schemas import MAX_ID, Body, LogsQuery, Query, Timestamp
from stashhog.models.enums import AlertStatus, LogLevel, RunOutcome


class RunsQuery(Query):
    limit: int = Field(50, ge=1, le=500, description="At most this many runs, newest first.")


class RunOut(Out):
    id: int
    daemon_id: uuid.UUID
    generation: int
    started_at: AwareDatetime
    stopped_at: AwareDatetime | None
    duration_seconds: float
    worker: str | None
    pid: int | None
    outcome: RunOutcome | None = Field(description="How it ended; null while it runs.")
    error: str | None = Field(description="The traceback of a crash.")
    lines_logged: int
    lines_dropped: int
    peak_rss: int | None = Field(description="Highest RSS sampled, bytes.")
    cpu_percent: float | None = Field(description="Latest CPU sample, % of one core.")
    rss: int | None = Field(description="Latest RSS sample, bytes.")


class RunList(Out):
    runs: list[RunOut]


class MetricsQuery(Query):
    range: Literal["15m", "6h", "7d"] = Field("15m", description="How far back.")


class MetricPoint(Out):
    t: AwareDatetime
    cpu_percent: float
    rss: int
    threads: int
    open_files: int


class MetricSeries(Out):
    daemon_id: uuid.UUID
    range: str
    resolution_seconds: int | None = Field(description="Bucket width; null: every sample.")
    points: list[MetricPoint]


class AllLogsQuery(Query):
    q: str | None = LogsQuery.model_fields["q"]
    level: LogLevel | None = Field(None, description="This level and the more severe ones.")
    since: Timestamp | None = Field(None, description="Lines created at or after this time.")
    daemon_id: uuid.UUID | None = Field(None, description="Only this daemon's lines.")
    generation: int | None = Field(None, ge=0, le=MAX_ID, description="Only this run's lines.")
    before_id: int | None = Field(None, ge=1, le=MAX_ID, description="Lines with a smaller id.")
    limit: int = Field(100, ge=1, le=1000, description="At most this many lines, newest first.")

    @field_validator("level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


class AlertsQuery(Query):
    status: AlertStatus | None = Field(None, description="Only firing or resolved alerts.")
    daemon_id: uuid.UUID | None = None
    limit: int = Field(100, ge=1, le=1000)


class AlertOut(Out):
    id: uuid.UUID
    rule: str
    subject: str
    daemon_id: uuid.UUID | None
    daemon_name: str | None
    status: AlertStatus
    message: str
    value: float | None
    started_at: AwareDatetime
    resolved_at: AwareDatetime | None
    notified_at: AwareDatetime | None
    resolve_notified_at: AwareDatetime | None


class AlertList(Out):
    alerts: list[AlertOut]
    firing: int = Field(description="Alerts firing now (all of them, not only those listed).")


class RuleOut(Out):
    name: str
    description: str
    enabled: bool
    threshold: float | None = Field(description="The rule's N (null when it takes none).")
    threshold_unit: str | None
    window: int | None = Field(description="Seconds the rule looks back (null: none).")


class RuleList(Out):
    rules: list[RuleOut]


class RuleUpdate(Body):
    name: str
    enabled: StrictBool | None = None
    threshold: float | None = Field(None, ge=0)
    window: StrictInt | None = Field(None, ge=10, le=86400 * 7)


class RulesUpdate(Body):
    rules: list[RuleUpdate] = Field(description="Rules to change; fields left out stay.")


class ChannelIn(Body):
    type: Literal["webhook", "apprise"]
    url: str = Field(min_length=1, max_length=2000)


class ChannelOut(Out):
    id: uuid.UUID
    type: str
    url: str
    created_at: AwareDatetime


class ChannelList(Out):
    channels: list[ChannelOut]


class DeliveryOut(Out):
    id: int
    channel_id: uuid.UUID
    job_id: uuid.UUID | None
    attempt: int
    ok: bool
    status_code: int | None
    error: str | None
    events: list[dict]
    created_at: AwareDatetime


class DeliveryList(Out):
    deliveries: list[DeliveryOut]
