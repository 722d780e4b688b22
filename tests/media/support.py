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


def generate_in_process(file_ids) -> dict:
    """Run the METADATA_GENERATE handler here, on a job row of its own (what the jobs
    worker does, without the queue): for tests that need a generated library fast."""
    from stashhog.jobs import get_job_spec, validate_job_metadata
    from stashhog.models import Job
    from stashhog.services import job_service

    metadata = validate_job_metadata("METADATA_GENERATE", {"file_ids": [str(i) for i in file_ids]})
    job = Job(type="METADATA_GENERATE", status="running", job_metadata=metadata)
    db.session.add(job)
    db.session.commit()
    return get_job_spec("METADATA_GENERATE").handler(job_service.job_context(job))


def index_and_generate(library) -> dict[str, MediaFile]:
    """Index ``library`` and generate every file in it; returns the rows by path."""
    from stashhog.media.library_files import DEFAULT_EXTENSIONS
    from stashhog.media.scanner import scan_root

    scan_root(str(library), frozenset(DEFAULT_EXTENSIONS))
    ids = list(db.session.scalars(select(MediaFile.id).order_by(MediaFile.path)))
    db.session.commit()
    generate_in_process(ids)
    return rows()
