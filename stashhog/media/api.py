"""``/api/media``: the library's files, one file's metadata, its cover thumbnail, and duplicate
groups. Routes only parse and shape; the reading lives in ``library`` and ``duplicates``."""

from __future__ import annotations

import uuid

from flask import current_app, send_file

from stashhog.api.openapi import route
from stashhog.errors import NotFound
from stashhog.media import work
from stashhog.media.duplicates import duplicate_groups
from stashhog.media.library import get_media, list_media, media_to_dict
from stashhog.media.schemas import (
    DuplicateList,
    DuplicatesQuery,
    MediaFileOut,
    MediaList,
    MediaQuery,
    ThumbnailQuery,
)
from stashhog.media.thumbnails import thumbnail_path

THUMBNAIL_MAX_AGE = 86400  # the URL changes with the cover (``?v=``), so caching is safe


@route("GET /media", MediaList, query=MediaQuery)
def list_media_files(query: MediaQuery):
    """Files of the library in path order, optionally filtered by status and path.

    Keyset paging: pass the response's `next_after` as `after` for the next page (null on the
    last one). `counts` gives the files per status in the whole library."""
    files, next_after = list_media(
        status=query.status, q=query.q, after=query.after, limit=query.limit
    )
    return {
        "files": [media_to_dict(row) for row in files],
        "next_after": next_after,
        "counts": work.status_counts(),
    }


@route("GET /media/duplicates", DuplicateList, query=DuplicatesQuery)
def list_duplicates(query: DuplicatesQuery):
    """Groups of files whose perceptual hashes are within `max_distance` bits.

    Files are linked when their phashes differ in at most `max_distance` of 64 bits, and
    groups are the linked sets, largest first. Missing files are left out."""
    groups = duplicate_groups(query.max_distance, query.limit)
    return {
        "max_distance": query.max_distance,
        "groups": [
            {"distance": g["distance"], "files": [media_to_dict(row) for row in g["files"]]}
            for g in groups
        ],
    }


@route("GET /media/<uuid:file_id>", MediaFileOut)
def get_media_file(file_id: uuid.UUID):
    """One file with all its metadata."""
    return media_to_dict(_find(file_id))


@route("GET /media/<uuid:file_id>/thumbnail", bytes, query=ThumbnailQuery, media_type="image/jpeg")
def get_thumbnail(file_id: uuid.UUID, query: ThumbnailQuery):
    """The file's cover thumbnail (JPEG), from the thumbnail cache.

    Served by id only: nothing from the request becomes a path. 404 when the file has no
    cover (not generated yet, or it could not be made)."""
    row = _find(file_id)
    path = thumbnail_path(current_app.config["THUMBNAIL_DIR"], row.id)
    if not row.has_thumbnail or not path.is_file():
        raise NotFound(f"file {file_id} has no thumbnail")
    return send_file(path, mimetype="image/jpeg", max_age=THUMBNAIL_MAX_AGE, conditional=True)


def _find(file_id: uuid.UUID):
    row = get_media(file_id)
    if row is None:
        raise NotFound(f"no media file with id {file_id}")
    return row
