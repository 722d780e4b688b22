"""Reading the media table in tests: rows by path, their PostgreSQL row versions, cleanup."""

from __future__ import annotations

from sqlalchemy import select, text

from stashhog.extensions import db
from stashhog.media.models import MediaFile
from stashhog.media.thumbnails import remove_thumbnail


def rows() -> dict[str, MediaFile]:
    """Media rows by path, fresh from the database."""
    db.session.expire_all()
    result = {row.path: row for row in db.session.scalars(select(MediaFile))}
    db.session.commit()
    return result


def row_versions() -> dict[str, str]:
    """Each row's ``xmin`` (PostgreSQL's row version): any UPDATE, even one that sets the
    same values, gives the row a new one."""
    result = dict(db.session.execute(text("SELECT path, xmin::text FROM media_files")).all())
    db.session.commit()
    return result


def forget_media(app) -> None:
    """Delete every media row and the thumbnail cached for it."""
    db.session.rollback()
    for file_id in db.session.scalars(select(MediaFile.id)):
        remove_thumbnail(app.config["THUMBNAIL_DIR"], file_id)
    db.session.execute(text("DELETE FROM media_files"))
    db.session.commit()
