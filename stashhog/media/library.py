"""Reading the library for the API and the pages: files filtered by status and path, in
path order with keyset paging (``after`` is the last path of the previous page), and one
file with all its metadata."""

from __future__ import annotations

import os
import uuid
from typing import Any

from flask import url_for
from sqlalchemy import select

from stashhog.extensions import db
from stashhog.media.models import MediaFile, Output
from stashhog.serializers import iso


def media_to_dict(row: MediaFile) -> dict[str, Any]:
    """A file as the API returns it; ``thumbnail_url`` changes when the cover does."""
    stamp = int(row.generated_at.timestamp()) if row.generated_at else 0
    # url_for: the link works as it is under URL_PREFIX too.
    thumbnail = url_for("api.get_thumbnail", file_id=row.id, v=stamp) if row.has_thumbnail else None
    return {
        "id": str(row.id),
        "path": row.path,
        "name": os.path.basename(row.path),
        "root": row.root,
        "kind": row.kind,
        "status": row.status,
        "size": row.size,
        "mtime": row.mtime_ns / 1e9,
        "container": row.container,
        "duration": row.duration,
        "width": row.width,
        "height": row.height,
        "frame_rate": row.frame_rate,
        "video_codec": row.video_codec,
        "audio_codec": row.audio_codec,
        "bit_rate": row.bit_rate,
        "checksum": row.checksum,
        "phash": row.phash,
        "thumbnail_url": thumbnail,
        "outputs": Output.names(row.outputs),
        "generator_version": row.generator_version,
        "error": row.error,
        "attempts": row.attempts,
        "job_id": str(row.job_id) if row.job_id else None,
        "missing_since": iso(row.missing_since),
        "generated_at": iso(row.generated_at),
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
    }


def list_media(
    status: str | None = None, q: str | None = None, after: str | None = None, limit: int = 100
) -> tuple[list[MediaFile], str | None]:
    """One page of files and the ``after`` value of the next page (None on the last)."""
    query = select(MediaFile).order_by(MediaFile.path).limit(limit + 1)
    if status is not None:
        query = query.where(MediaFile.status == status)
    if q:
        query = query.where(MediaFile.path.icontains(q, autoescape=True))
    if after is not None:
        query = query.where(MediaFile.path > after)
    page = list(db.session.scalars(query, execution_options={"populate_existing": True}))
    more = len(page) > limit
    page = page[:limit]
    return page, (page[-1].path if more else None)


def get_media(file_id: uuid.UUID) -> MediaFile | None:
    return db.session.get(MediaFile, file_id, populate_existing=True)
