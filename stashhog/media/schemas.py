"""Pydantic models of the media API: its query parameters and responses (and so its part of
the OpenAPI document)."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import AwareDatetime, Field, field_validator

from stashhog.api.responses import Out
from stashhog.api.schemas import Query
from stashhog.media.models import MediaStatus

MAX_PATH = 4096


def _no_nul(value: str | None) -> str | None:
    # PostgreSQL cannot hold NUL in text: refused here, not as a 500 from the database.
    if value is not None and "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


class MediaQuery(Query):
    status: MediaStatus | None = Field(None, description="Only files in this status.")
    q: str | None = Field(
        None, max_length=500, description="Only files whose path contains this (any case)."
    )
    after: str | None = Field(
        None,
        max_length=MAX_PATH,
        description="Files after this path: the `next_after` of the previous page.",
    )
    limit: int = Field(100, ge=1, le=500, description="At most this many files, in path order.")

    _text = field_validator("q", "after")(_no_nul)


class ThumbnailQuery(Query):
    v: str | None = Field(
        None,
        max_length=40,
        description="Ignored: `thumbnail_url` carries it so a new cover gets a new URL.",
    )


class DuplicatesQuery(Query):
    max_distance: int = Field(
        4, ge=0, le=32, description="Largest Hamming distance (bits of 64) between linked files."
    )
    limit: int = Field(100, ge=1, le=1000, description="At most this many groups.")


class MediaFileOut(Out):
    id: uuid.UUID
    path: str
    name: str
    root: str = Field(description="The watched folder the file was found under.")
    kind: Literal["video", "image"]
    status: MediaStatus
    size: int = Field(description="Bytes.")
    mtime: float = Field(description="Modification time, seconds since the epoch.")
    container: str | None
    duration: float | None = Field(description="Seconds.")
    width: int | None
    height: int | None
    frame_rate: float | None
    video_codec: str | None
    audio_codec: str | None
    bit_rate: int | None = Field(description="Bits per second.")
    checksum: str | None = Field(description="oshash: 16 hex digits.")
    phash: str | None = Field(description="Perceptual hash: 16 hex digits.")
    thumbnail_url: str | None = Field(description="The cover image, when there is one.")
    outputs: list[Literal["probe", "thumbnail", "phash", "checksum"]] = Field(
        description="What has been generated from the file as it is."
    )
    generator_version: int
    error: str | None = Field(description="Why the file failed, output by output.")
    attempts: int
    job_id: uuid.UUID | None = Field(description="The job working on the file now.")
    missing_since: AwareDatetime | None
    generated_at: AwareDatetime | None
    created_at: AwareDatetime
    updated_at: AwareDatetime


class MediaList(Out):
    files: list[MediaFileOut]
    next_after: str | None = Field(description="Pass as `after` for the next page; null: last.")
    counts: dict[str, int] = Field(description="Files per status in the whole library.")


class DuplicateGroup(Out):
    distance: int = Field(description="Widest Hamming distance between two files of the group.")
    files: list[MediaFileOut]


class DuplicateList(Out):
    max_distance: int
    groups: list[DuplicateGroup]
