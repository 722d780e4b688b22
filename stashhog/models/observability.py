"""What observability keeps beside the daemons: runs (one per instance), process samples and
their rollups, alert rules, alerts, notification channels and the delivery log."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, String, Text, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from stashhog.extensions import db
from stashhog.models.daemon import BigId
from stashhog.models.types import JSONType, UTCDateTime, utcnow

FIRING_SQL = "status = 'firing'"


class DaemonRun(db.Model):
    """One instance (generation) of a daemon: when and where it ran, and how it ended."""

    __tablename__ = "daemon_runs"
    __table_args__ = (
        Index("uq_daemon_runs_daemon_id_generation", "daemon_id", "generation", unique=True),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    daemon_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("daemons.id", ondelete="CASCADE"))
    generation: Mapped[int] = mapped_column(BigInteger)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    worker: Mapped[str | None] = mapped_column(String(255))
    pid: Mapped[int | None] = mapped_column(Integer)
    # None while it runs; then a RunOutcome value.
    outcome: Mapped[str | None] = mapped_column(String(20))
    error: Mapped[str | None] = mapped_column(Text)
    lines_logged: Mapped[int] = mapped_column(BigInteger, default=0)
    lines_dropped: Mapped[int] = mapped_column(BigInteger, default=0)
    peak_rss: Mapped[int | None] = mapped_column(BigInteger)
    # The latest sample, so the supervisor pass and /metrics read one row per daemon.
    cpu_percent: Mapped[float | None] = mapped_column(Float)
    rss: Mapped[int | None] = mapped_column(BigInteger)


class DaemonMetric(db.Model):
    """A sample of the instance's process (``resolution`` 0) or a rollup of them (its width
    in seconds: the average CPU and the peak RSS of the bucket starting at ``created_at``)."""

    __tablename__ = "daemon_metrics"
    __table_args__ = (
        Index("ix_daemon_metrics_daemon_res_created", "daemon_id", "resolution", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    daemon_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("daemons.id", ondelete="CASCADE"))
    resolution: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    generation: Mapped[int | None] = mapped_column(BigInteger)
    cpu_percent: Mapped[float] = mapped_column(Float)
    rss: Mapped[int] = mapped_column(BigInteger)
    threads: Mapped[int] = mapped_column(Integer)
    open_files: Mapped[int] = mapped_column(Integer)


class AlertRule(db.Model):
    """An operator's setting of a built-in rule (``observability.rules``); rules without a
    row use their defaults."""

    __tablename__ = "alert_rules"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    enabled: Mapped[bool] = mapped_column(default=False)
    threshold: Mapped[float | None] = mapped_column(Float)
    window: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Alert(db.Model):
    """One firing of a rule for one subject (a daemon, or the jobs), until it resolves."""

    __tablename__ = "alerts"
    __table_args__ = (
        # At most one firing alert per rule and subject, even with overlapping passes.
        Index(
            "uq_alerts_firing",
            "rule",
            "subject",
            unique=True,
            postgresql_where=text(FIRING_SQL),
            sqlite_where=text(FIRING_SQL),
        ),  # fmt: skip
        Index("ix_alerts_status_started_at", "status", "started_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    rule: Mapped[str] = mapped_column(String(50))
    subject: Mapped[str] = mapped_column(String(100))
    daemon_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("daemons.id", ondelete="CASCADE")
    )
    status: Mapped[str] = mapped_column(String(20), default="firing")
    message: Mapped[str] = mapped_column(Text)
    value: Mapped[float | None] = mapped_column(Float)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When the firing and the resolve were handed to the channels (None: still owed).
    notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolve_notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AlertChannel(db.Model):
    __tablename__ = "alert_channels"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    type: Mapped[str] = mapped_column(String(20))
    url: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AlertDelivery(db.Model):
    """One attempt to send one notification (a group of alert events) to one channel."""

    __tablename__ = "alert_deliveries"
    __table_args__ = (Index("ix_alert_deliveries_channel_id_id", "channel_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    channel_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("alert_channels.id", ondelete="CASCADE")
    )
    job_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    ok: Mapped[bool] = mapped_column(default=False)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    events: Mapped[list] = mapped_column(JSONType, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
