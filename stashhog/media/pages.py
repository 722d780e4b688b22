"""Library pages: the files (thumbnail grid or table, filter and search, live while jobs
run), one file's metadata, and the duplicate groups. They load from ``/api/media``."""

from __future__ import annotations

import uuid

from flask import render_template

from stashhog.media.library import get_media, media_to_dict
from stashhog.media.models import MediaStatus
from stashhog.web import bp, not_found


@bp.get("/library")
def library():
    return render_template("library/list.html", statuses=[str(s) for s in MediaStatus])


@bp.get("/library/duplicates")
def library_duplicates():
    return render_template("library/duplicates.html")


@bp.get("/library/<uuid:file_id>")
def library_file(file_id: uuid.UUID):
    row = get_media(file_id)
    if row is None:
        return not_found(f"There is no media file with id {file_id}.")
    return render_template("library/detail.html", file=media_to_dict(row))
