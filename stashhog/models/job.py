"""Finite jobs, launched by daemons or the API and run on the ``jobs`` queue."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from stashhog.extensions import db
from stashhog.models.enums import JobStatus
from stashhog.models.types import JSONType, UTCDateTime, utcnow


class Job(db.Model):
    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_status_created_at", "status", "created_at"),
        Index("ix_jobs_daemon_id_created_at", "daemon_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    type: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20), default=JobStatus.PENDING)
    progress: Mapped[int] = mapped_column(Integer, default=0)
    message: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict | None] = mapped_column(JSONType)
    error: Mapped[str | None] = mapped_column(Text)
    # "metadata" is reserved on declarative classes; the column keeps its name.
    job_metadata: Mapped[dict] = mapped_column("metadata", JSONType, default=dict)
    celery_task_id: Mapped[str | None] = mapped_column(String(155))
    daemon_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("daemons.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
