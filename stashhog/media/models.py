"""``media_files``: one row per file under a watched folder, with its size + mtime index entry
(what the rescan compares), its generated metadata, and the claim of the job working on it."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import IntFlag, StrEnum

from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from stashhog.extensions import db
from stashhog.models.types import UTCDateTime, utcnow


class MediaStatus(StrEnum):
    PENDING = "pending"  # metadata missing or stale: waiting for a METADATA_GENERATE job
    READY = "ready"  # every requested output generated from the file as it is
    FAILED = "failed"  # the file could not be processed; ``error`` says why
    MISSING = "missing"  # gone from its folder; metadata kept in case it comes back


class MediaKind(StrEnum):
    VIDEO = "video"
    IMAGE = "image"


class Output(IntFlag):
    """What a job generates; stored as a bit mask so "has every wanted output" is one
    integer comparison on PostgreSQL and SQLite alike."""

    PROBE = 1
    THUMBNAIL = 2
    PHASH = 4
    CHECKSUM = 8

    @classmethod
    def mask(cls, names: list[str] | tuple[str, ...]) -> int:
        return int(sum(cls[name.upper()] for name in set(names)))

    @classmethod
    def names(cls, mask: int) -> list[str]:
        return [flag.name.lower() for flag in cls if mask & flag]


ALL_OUTPUTS = ("probe", "thumbnail", "phash", "checksum")
# The version of what ``generate`` produces, stored with each file's results. Raise it when
# the outputs change (a new field, a different hash): every file becomes stale and the
# watcher regenerates the library.
GENERATOR_VERSION = 1


class MediaFile(db.Model):
    __tablename__ = "media_files"
    __table_args__ = (
        Index("uq_media_files_path", "path", unique=True),
        Index("ix_media_files_root", "root"),
        Index("ix_media_files_status_path", "status", "path"),
        Index("ix_media_files_checksum", "checksum"),
        Index("ix_media_files_job_id", "job_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    path: Mapped[str] = mapped_column(Text)
    root: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(20), default=MediaStatus.PENDING)
    size: Mapped[int] = mapped_column(BigInteger)
    mtime_ns: Mapped[int] = mapped_column(BigInteger)
    checksum: Mapped[str | None] = mapped_column(String(16))
    phash: Mapped[str | None] = mapped_column(String(16))
    container: Mapped[str | None] = mapped_column(String(100))
    duration: Mapped[float | None] = mapped_column(Float)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    frame_rate: Mapped[float | None] = mapped_column(Float)
    video_codec: Mapped[str | None] = mapped_column(String(50))
    audio_codec: Mapped[str | None] = mapped_column(String(50))
    bit_rate: Mapped[int | None] = mapped_column(BigInteger)
    has_thumbnail: Mapped[bool] = mapped_column(Boolean, default=False)
    outputs: Mapped[int] = mapped_column(Integer, default=0)
    generator_version: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    # Jobs that started on this file since it last changed; a file that keeps killing its
    # job (a decoder hang, an OOM) is failed after a few, so it cannot starve the others.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    job_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("jobs.id", ondelete="SET NULL")
    )
    missing_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    generated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
