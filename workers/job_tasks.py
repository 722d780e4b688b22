"""The ``stashhog.run_job`` task: runs one job's registered handler on the ``jobs`` queue.

The rules (which transitions are allowed, what each one records) live in
``stashhog.services.job_service``; this task only drives a job through them.
"""

from __future__ import annotations

from celery import Task, shared_task
from celery.utils.log import get_task_logger

from stashhog.jobs import JobCancelled, get_job_spec
from stashhog.models import Job
from stashhog.services import job_service

logger = get_task_logger(__name__)


@shared_task(name="stashhog.run_job", bind=True)
def run_job(self: Task, job_id: str) -> None:
    """Run a pending job to completed, failed or cancelled. A job that is not pending (it was
    cancelled while queued, or another delivery took it) is left alone."""
    job = job_service.start_job(job_id)
    if job is None:
        logger.info("job %s is not pending; task %s does nothing", job_id, self.request.id)
        return
    try:
        result = _run_handler(job)
        job_service.complete_job(job_id, result)
    except JobCancelled:
        job_service.mark_cancelled(job_id)
    except SystemExit:
        # revoke(terminate=True) reaches a prefork child as SystemExit (ARCHITECTURE.md §6).
        # Swallowed for a requested cancel, so the pool keeps this child.
        if not job_service.finish_terminated(job_id):
            raise
    except Exception as exc:
        logger.exception("job %s failed", job_id)
        job_service.fail_job(job_id, f"{type(exc).__name__}: {exc}")


def _run_handler(job: Job) -> dict | None:
    spec = get_job_spec(job.type)
    return spec.handler(job_service.job_context(job))
