"""Daemons, their log lines and the record of what they did with jobs."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, String, Text, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from stashhog.extensions import db
from stashhog.models.enums import DaemonStatus, DesiredState, LimitAction, RestartPolicy
from stashhog.models.types import JSONType, UTCDateTime, utcnow

# SQLite only auto-increments INTEGER PRIMARY KEY, so the big-integer id falls back to it there.
BigId = BigInteger().with_variant(Integer(), "sqlite")
TERMINAL_ACTIONS_SQL = "action IN ('FINISHED', 'FAILED', 'CANCELLED')"
ERROR_LINES_SQL = "level = 'ERROR'"
FTS_DOCUMENT_SQL = "to_tsvector('simple', message)"


class Daemon(db.Model):
    __tablename__ = "daemons"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    type: Mapped[str] = mapped_column(String(100))
    enabled: Mapped[bool] = mapped_column(default=True)
    auto_start: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(String(50), default=DaemonStatus.STOPPED)
    configuration: Mapped[dict] = mapped_column(JSONType, default=dict)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_heartbeat: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    # Runtime: what the operator wants, and which instance currently owns the daemon.
    desired_state: Mapped[str] = mapped_column(String(20), default=DesiredState.STOPPED)
    generation: Mapped[int] = mapped_column(BigInteger, default=0)
    task_id: Mapped[str | None] = mapped_column(String(155))
    worker: Mapped[str | None] = mapped_column(String(255))
    worker_pid: Mapped[int | None] = mapped_column(Integer)
    status_line: Mapped[str | None] = mapped_column(Text)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    # Log lines the current run lost: dropped past the buffer cap, or unwritten at its stop.
    log_lines_dropped: Mapped[int] = mapped_column(BigInteger, default=0)

    # Supervision: restart policy and the crash budget.
    restart_policy: Mapped[str] = mapped_column(String(20), default=RestartPolicy.ON_FAILURE)
    max_restarts: Mapped[int] = mapped_column(Integer, default=5)
    restart_window: Mapped[int] = mapped_column(Integer, default=600)
    restart_count: Mapped[int] = mapped_column(Integer, default=0)
    next_restart_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    # Retention of its log lines (None: the global LOG_MAX_LINES / LOG_MAX_AGE_DAYS).
    log_max_lines: Mapped[int | None] = mapped_column(BigInteger)
    log_max_age_days: Mapped[int | None] = mapped_column(Integer)

    # Start order: the ids (as strings) of the daemons this one needs RUNNING first.
    depends_on: Mapped[list] = mapped_column(JSONType, default=list)
    # Resource limits (None: no limit) and what a breach does.
    max_memory_mb: Mapped[int | None] = mapped_column(Integer)
    max_cpu_percent: Mapped[float | None] = mapped_column(Float)
    limit_action: Mapped[str] = mapped_column(String(10), default=LimitAction.RESTART)

    def __repr__(self) -> str:
        return f"<Daemon {self.name} {self.status}>"


class DaemonLog(db.Model):
    """One log line. The id is a big integer (not the seed's UUID) so ids order lines and
    ``after_id`` paging is exact."""

    __tablename__ = "daemon_logs"
    __table_args__ = (
        Index("ix_daemon_logs_daemon_id_id", "daemon_id", "id"),
        Index("ix_daemon_logs_daemon_id_level_id", "daemon_id", "level", "id"),
        Index(
            "uq_daemon_logs_daemon_id_generation_seq", "daemon_id", "generation", "seq", unique=True
        ),
        # The alert on ERROR lines per minute counts recent ones: a small partial index.
        Index(
            "ix_daemon_logs_errors_created_at",
            "created_at",
            postgresql_where=text(ERROR_LINES_SQL),
            sqlite_where=text(ERROR_LINES_SQL),
        ),  # fmt: skip
        # Log search (observability.search); PostgreSQL only, SQLite scans with LIKE.
        Index("ix_daemon_logs_message_fts", text(FTS_DOCUMENT_SQL), postgresql_using="gin").ddl_if(
            dialect="postgresql"
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # On PostgreSQL statement-level triggers keep this reference (migration 0009): the per-row
    # foreign key was 35-40 % of a log batch's cost. SQLite keeps the foreign key.
    daemon_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("daemons.id", ondelete="CASCADE"))
    level: Mapped[str] = mapped_column(String(20))
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Which instance wrote the line, and its position in that instance's stream.
    generation: Mapped[int | None] = mapped_column(BigInteger)
    seq: Mapped[int | None] = mapped_column(BigInteger)


class DaemonJobHistory(db.Model):
    __tablename__ = "daemon_job_history"
    __table_args__ = (
        Index("ix_daemon_job_history_daemon_id_created_at", "daemon_id", "created_at"),
        Index("ix_daemon_job_history_job_id", "job_id"),
        # Exactly one terminal record per job (FINISHED, FAILED or CANCELLED).
        Index(
            "uq_daemon_job_history_terminal",
            "job_id",
            unique=True,
            postgresql_where=text(TERMINAL_ACTIONS_SQL),
            sqlite_where=text(TERMINAL_ACTIONS_SQL),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    daemon_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("daemons.id", ondelete="CASCADE"))
    job_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("jobs.id", ondelete="SET NULL")
    )
    action: Mapped[str] = mapped_column(String(50))
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
