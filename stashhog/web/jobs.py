"""Job pages: the filterable list with live progress, and one job's details."""

import uuid

from flask import render_template

from stashhog.jobs import registered_job_types
from stashhog.serializers import job_to_dict
from stashhog.services.job_service import get_job
from stashhog.web import bp, not_found


@bp.get("/jobs")
def job_list():
    return render_template("jobs/list.html", job_types=registered_job_types())


@bp.get("/jobs/<uuid:job_id>")
def job_detail(job_id: uuid.UUID):
    job = get_job(job_id)
    if job is None:
        return not_found(f"There is no job with id {job_id}.")
    return render_template("jobs/detail.html", job=job_to_dict(job))
