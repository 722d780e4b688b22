"""``/api/jobs``: create, list, inspect and cancel jobs. Rules live in ``job_service``."""

from __future__ import annotations

import uuid

from flask import url_for

from stashhog.api.openapi import route
from stashhog.api.responses import JobAction, JobList, JobOut
from stashhog.api.schemas import CancelJob, JobCreate, JobsQuery
from stashhog.serializers import job_to_dict
from stashhog.services import job_service


@route("GET /jobs", JobList, query=JobsQuery)
def list_jobs(query: JobsQuery):
    """Jobs, newest first, optionally filtered by status, type and daemon."""
    jobs = job_service.list_jobs(**query.model_dump(exclude_none=True))
    return {"jobs": [job_to_dict(job) for job in jobs]}


@route("POST /jobs", JobOut, status=201, body=JobCreate)
def create_job(body):
    """Create a job of a registered type.

    ``metadata`` is validated against the type's schema (unknown keys and wrong types are a
    422 naming the key); left out, the type's defaults apply. The job is queued at once."""
    metadata = body.metadata.model_dump(mode="json") if body.metadata is not None else None
    job = job_service.create_job(body.type, metadata)
    data = job_to_dict(job)
    return data, {"Location": url_for("api.get_job", job_id=data["id"])}


@route("GET /jobs/<uuid:job_id>", JobOut)
def get_job(job_id: uuid.UUID):
    """One job."""
    return job_to_dict(job_service.find_job(job_id))


@route(
    "POST /jobs/<uuid:job_id>/cancel", JobAction, body=CancelJob, body_required=False, errors=(409,)
)
def cancel_job(job_id: uuid.UUID, body: CancelJob | None):
    """Cancel a job.

    A pending job is cancelled at once; a running one is asked to stop and is ``cancelling``
    until it does. Cancelling a cancelled or cancelling job changes nothing; a completed or
    failed job is a 409."""
    return job_service.request_cancellation(job_id, body.reason if body else None)
