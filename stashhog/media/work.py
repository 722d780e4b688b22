"""Which files need a ``METADATA_GENERATE`` job, and the claims that keep a file in one job.

A file needs work when it is not missing, not claimed, and either pending, or ready/failed
with results older than the generator (``GENERATOR_VERSION`` rose), or ready without every
wanted output. The watcher claims a batch for the job it launched (``job_id``); the job
re-claims each file as it starts it, so a job launched by hand cannot take a file another
job holds either. Claims of a job that ended (cancelled, failed, killed) are released, and
its unfinished files go back to the pool.
"""

from __future__ import annotations

import uuid

from sqlalchemy import and_, func, or_, select, update

from stashhog.extensions import db
from stashhog.media.models import GENERATOR_VERSION, MediaFile, MediaStatus
from stashhog.models import Job, JobStatus

TERMINAL_JOB_STATUSES = [str(s) for s in JobStatus if s.is_terminal]


def needs_work(wanted: int):
    """The SQL condition "this file needs a job for the ``wanted`` outputs"."""
    stale = MediaFile.generator_version < GENERATOR_VERSION
    incomplete = MediaFile.outputs.op("&")(wanted) != wanted
    return and_(
        MediaFile.job_id.is_(None),
        or_(
            MediaFile.status == MediaStatus.PENDING,
            and_(MediaFile.status == MediaStatus.READY, or_(stale, incomplete)),
            and_(MediaFile.status == MediaStatus.FAILED, stale),
        ),
    )


def next_batch(wanted: int, size: int, roots: list[str] | None = None) -> list[uuid.UUID]:
    """Up to ``size`` files that need work, in path order."""
    query = select(MediaFile.id).where(needs_work(wanted)).order_by(MediaFile.path).limit(size)
    if roots is not None:
        query = query.where(MediaFile.root.in_(roots))
    ids = list(db.session.scalars(query))
    db.session.commit()
    return ids


def claim(job_id: uuid.UUID, file_ids: list[uuid.UUID], wanted: int) -> int:
    """Hand the files that still need work to ``job_id``; returns how many it got. (The job
    may already have started, and finished some: those are ready and stay so.)"""
    result = db.session.execute(
        update(MediaFile)
        .where(MediaFile.id.in_(file_ids), needs_work(wanted))
        .values(job_id=job_id, status=MediaStatus.PENDING)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return result.rowcount


def release_ended_claims() -> int:
    """Free the files held by jobs that have ended; returns how many. Reads first, so a
    pass with nothing to release writes nothing."""
    ended = select(Job.id).where(Job.status.in_(TERMINAL_JOB_STATUSES))
    held = select(MediaFile.id).where(MediaFile.job_id.in_(ended))
    file_ids = list(db.session.scalars(held))
    if file_ids:
        release(file_ids)
    db.session.commit()
    return len(file_ids)


def release(file_ids: list[uuid.UUID], job_id: uuid.UUID | None = None) -> None:
    query = update(MediaFile).where(MediaFile.id.in_(file_ids))
    if job_id is not None:
        query = query.where(MediaFile.job_id == job_id)
    db.session.execute(query.values(job_id=None).execution_options(synchronize_session=False))
    db.session.commit()


def status_counts(roots: list[str] | None = None) -> dict[str, int]:
    query = select(MediaFile.status, func.count()).group_by(MediaFile.status)
    if roots is not None:
        query = query.where(MediaFile.root.in_(roots))
    counts = {str(status): 0 for status in MediaStatus}
    counts.update(dict(db.session.execute(query).all()))
    db.session.commit()
    return counts


def pending_count(wanted: int, roots: list[str] | None = None) -> int:
    """Files waiting for work: unclaimed ones that need it, plus those claimed by a job."""
    waiting = or_(needs_work(wanted), MediaFile.job_id.is_not(None))
    query = select(func.count()).select_from(MediaFile).where(waiting)
    if roots is not None:
        query = query.where(MediaFile.root.in_(roots))
    count = db.session.scalar(query) or 0
    db.session.commit()
    return count
