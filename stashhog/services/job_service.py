"""Jobs: create, query and cancel them, and the lifecycle the ``stashhog.run_job`` task drives.

Every change of a job row goes through ``update_job`` (or, for the insert, the same commit
and publish step), so the database and the ``job_update`` events never disagree. Changes are
conditional on the current status, so racing writers (a cancel and a completion, two
deliveries of one task) resolve to exactly one outcome.

    pending -> running -> completed | failed | cancelling -> cancelled
    pending -> cancelled (never runs)
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import timedelta
from functools import partial
from typing import Any

from flask import current_app
from sqlalchemy import select, update

from stashhog.celery_app import get_celery, send_task
from stashhog.errors import Conflict, JobNotFound
from stashhog.events import EventType, publish
from stashhog.extensions import db
from stashhog.jobs import JobContext, get_job_spec, parse_job_metadata, validate_job_metadata
from stashhog.models import Job, JobStatus, JobType
from stashhog.models.enums import JOB_RUNNING_STATES
from stashhog.models.types import utcnow
from stashhog.serializers import job_to_dict
from stashhog.services.daemon_audit import audited

# Seconds a job may stay CANCELLING (its handler ignoring the request) before
# ``enforce_cancellations`` terminates its worker process.
CANCEL_GRACE_SECONDS = 10.0

JobId = uuid.UUID | str


def update_job(
    job_id: JobId, *, only_from: Iterable[str] | None = None, **values: Any
) -> Job | None:
    """Apply ``values`` to the row (only if its status is in ``only_from``), commit, publish.

    Returns the updated job, or None when the row is missing or its status did not match.
    """
    stmt = update(Job).where(Job.id == _as_uuid(job_id)).values(updated_at=utcnow(), **values)
    if only_from is not None:
        stmt = stmt.where(Job.status.in_([str(status) for status in only_from]))
    job = db.session.execute(
        stmt.returning(Job), execution_options={"populate_existing": True}
    ).scalar_one_or_none()
    if job is None:
        db.session.rollback()
        return None
    _commit_and_publish(job)
    return job


def _commit_and_publish(job: Job) -> None:
    # Serialised before the commit expires the object; published after it, so a listener
    # that re-reads the row sees at least this state.
    payload = job_to_dict(job)
    db.session.commit()
    publish(EventType.JOB_UPDATE, payload["daemon_id"], job=payload)


def create_job(
    job_type: JobType | str,
    metadata: Mapping[str, Any] | None = None,
    daemon_id: JobId | None = None,
) -> Job:
    """Validate, insert a pending job, and queue it on the ``jobs`` queue.

    Raises ``JobValidationError`` (nothing inserted) if the type or metadata is invalid.
    """
    clean = validate_job_metadata(job_type, metadata)
    job = Job(
        id=uuid.uuid4(),
        type=str(get_job_spec(job_type).type),
        status=JobStatus.PENDING,
        progress=0,
        job_metadata=clean,
        daemon_id=_as_uuid(daemon_id) if daemon_id else None,
        celery_task_id=str(uuid.uuid4()),
    )
    job_id, task_id = job.id, job.celery_task_id
    db.session.add(job)
    db.session.flush()
    # Committed (and its event published) before the task is sent, so the worker always
    # finds the row and listeners see "pending" before "running".
    _commit_and_publish(job)
    _queue(job_id, task_id)
    return job


def _queue(job_id: uuid.UUID, task_id: str) -> None:
    try:
        send_task("stashhog.run_job", str(job_id), task_id=task_id, queue="jobs")
    except Exception as exc:
        update_job(
            job_id,
            only_from=[JobStatus.PENDING],
            status=JobStatus.FAILED,
            error=f"could not queue the job: {type(exc).__name__}: {exc}",
            completed_at=utcnow(),
        )
        raise


def get_job(job_id: JobId) -> Job | None:
    """The job as it is in the database now (never a stale copy from the session)."""
    try:
        key = _as_uuid(job_id)
    except ValueError:
        return None
    return db.session.get(Job, key, populate_existing=True)


def find_job(job_id: JobId) -> Job:
    """The job as it is now; ``JobNotFound`` when there is none."""
    job = get_job(job_id)
    if job is None:
        raise JobNotFound(f"no job with id {job_id}")
    return job


def list_jobs(
    status: JobStatus | str | None = None,
    type: JobType | str | None = None,
    daemon_id: JobId | None = None,
    limit: int = 50,
) -> list[Job]:
    """Jobs, newest first, optionally filtered."""
    query = select(Job).order_by(Job.created_at.desc(), Job.id.desc()).limit(limit)
    if status is not None:
        query = query.where(Job.status == str(status))
    if type is not None:
        query = query.where(Job.type == str(type))
    if daemon_id is not None:
        query = query.where(Job.daemon_id == _as_uuid(daemon_id))
    return list(db.session.scalars(query, execution_options={"populate_existing": True}))


def cancel_job(job_id: JobId, reason: str | None = None) -> Job:
    """Cancel a job: a pending one at once (it will never run), a running one cooperatively
    (CANCELLING until its handler stops). A finished job is returned unchanged."""
    find_job(job_id)
    message = f"Cancelled: {reason}" if reason else "Cancelled"
    job = update_job(
        job_id,
        only_from=[JobStatus.PENDING],
        status=JobStatus.CANCELLED,
        message=message,
        completed_at=utcnow(),
    )
    if job is not None:
        # Without terminate: a queued message is dropped; the task also refuses non-pending rows.
        _revoke(job.celery_task_id, terminate=False)
        return job
    job = update_job(
        job_id, only_from=[JobStatus.RUNNING], status=JobStatus.CANCELLING, message=message
    )
    return job or get_job(job_id)


@audited("cancel", target="job")
def request_cancellation(job_id: JobId, reason: str | None = None) -> dict[str, Any]:
    """An operator's cancel: ``{"job", "changed", "message"}``. Cancelling a cancelled or
    cancelling job changes nothing; one that completed or failed is a ``Conflict``."""
    before = JobStatus(find_job(job_id).status)
    if before in (JobStatus.CANCELLED, JobStatus.CANCELLING):
        return _cancel_reply(find_job(job_id), False, f"job is already {before}")
    if before.is_terminal:
        raise Conflict(f"job already ended: {before}")
    job = cancel_job(job_id, reason)
    status = JobStatus(job.status)
    if status in (JobStatus.COMPLETED, JobStatus.FAILED):
        raise Conflict(f"job ended before it could be cancelled: {status}")
    return _cancel_reply(job, True, f"job is {status}")


def _cancel_reply(job: Job, changed: bool, message: str) -> dict[str, Any]:
    return {"job": job_to_dict(job), "changed": changed, "message": message}


def enforce_cancellations(grace: float = CANCEL_GRACE_SECONDS) -> list[Job]:
    """Terminate jobs that have ignored a cancel for longer than ``grace`` seconds and mark
    them cancelled. Meant for a periodic supervisor."""
    # While CANCELLING nothing else writes the row (progress is only recorded while RUNNING),
    # so updated_at is the moment the cancel was requested.
    cutoff = utcnow() - timedelta(seconds=grace)
    stuck = db.session.execute(
        select(Job.id, Job.celery_task_id).where(
            Job.status == JobStatus.CANCELLING, Job.updated_at <= cutoff
        )
    ).all()
    db.session.commit()
    cancelled = []
    for job_id, task_id in stuck:
        # Marked first: the terminated task then finds its cancel already recorded.
        job = mark_cancelled(job_id)
        if job is not None:
            _revoke(task_id, terminate=True)
            cancelled.append(job)
    return cancelled


# The lifecycle below is driven by the stashhog.run_job task.


def start_job(job_id: JobId) -> Job | None:
    """pending -> running. None if the job is not pending (cancelled, or already taken)."""
    return update_job(
        job_id, only_from=[JobStatus.PENDING], status=JobStatus.RUNNING, started_at=utcnow()
    )


def job_context(job: Job) -> JobContext:
    """The context handed to the job's handler, wired to this job's row."""
    return JobContext(
        job.id,
        parse_job_metadata(job.type, job.job_metadata),
        on_progress=partial(report_progress, job.id),
        probe_cancelled=partial(is_cancel_requested, job.id),
    )


def report_progress(job_id: JobId, percent: int, message: str | None = None) -> Job | None:
    """Record progress; ignored unless the job is RUNNING (a cancel has the last word)."""
    return update_job(job_id, only_from=[JobStatus.RUNNING], progress=percent, message=message)


def is_cancel_requested(job_id: JobId) -> bool:
    """True when the job should stop: it is no longer RUNNING (cancelling, or ended)."""
    status = _status(job_id)
    # End the read transaction so a long job does not sit idle in one.
    db.session.commit()
    return status != JobStatus.RUNNING


def complete_job(job_id: JobId, result: Mapping[str, Any] | None) -> Job | None:
    """The handler returned: completed, even if a cancel arrived after the work was done."""
    return update_job(
        job_id,
        only_from=JOB_RUNNING_STATES,
        status=JobStatus.COMPLETED,
        progress=100,
        result=dict(result) if result is not None else None,
        completed_at=utcnow(),
    )


def fail_job(job_id: JobId, error: str) -> Job | None:
    """The handler raised: failed, with the error text."""
    db.session.rollback()  # the handler may have left the session mid-transaction
    return update_job(
        job_id,
        only_from=JOB_RUNNING_STATES,
        status=JobStatus.FAILED,
        error=error,
        completed_at=utcnow(),
    )


def mark_cancelled(job_id: JobId) -> Job | None:
    """The handler stopped because of a cancel (or was terminated): cancelled."""
    return update_job(
        job_id, only_from=JOB_RUNNING_STATES, status=JobStatus.CANCELLED, completed_at=utcnow()
    )


def finish_terminated(job_id: JobId) -> bool:
    """End a job whose process was sent SIGTERM. True if that was a requested cancellation
    (the job ends cancelled); otherwise the job ends failed and the caller should re-raise."""
    _discard_session()
    job = update_job(
        job_id,
        only_from=[JobStatus.CANCELLING],
        status=JobStatus.CANCELLED,
        completed_at=utcnow(),
    )
    if job is not None or _status(job_id) == JobStatus.CANCELLED:
        return True
    fail_job(job_id, "SystemExit: the worker process was terminated")
    return False


def _status(job_id: JobId) -> str | None:
    return db.session.scalar(select(Job.status).where(Job.id == _as_uuid(job_id)))


def _discard_session() -> None:
    # A signal can interrupt a statement half-way; start again from a clean session.
    try:
        db.session.rollback()
    except Exception:
        db.session.close()


def _revoke(task_id: str | None, *, terminate: bool) -> None:
    if not task_id:
        return
    options = {"terminate": True, "signal": "SIGTERM"} if terminate else {}
    try:
        get_celery().control.revoke(task_id, **options)
    except Exception:
        # Best effort: the row is the record and the task refuses a job that is not pending.
        current_app.logger.warning("could not revoke task %s", task_id, exc_info=True)


def _as_uuid(value: JobId) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
