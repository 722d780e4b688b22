"""``/api/jobs``: create, list, get and cancel, with each error status and proof that refused
requests leave the database as it was."""

from __future__ import annotations

import uuid

import pytest

from stashhog.api.responses import JobAction, JobList, JobOut
from stashhog.auth.roles import Role
from stashhog.extensions import db
from stashhog.models import Job
from tests.api.conftest import error_of
from tests.support.access import with_token
from tests.support.wait import eventually

UNKNOWN = str(uuid.uuid4())


def job_status(job_id) -> str:
    db.session.expire_all()
    return db.session.get(Job, uuid.UUID(str(job_id))).status


# -- POST /api/jobs ---------------------------------------------------------------------------


@pytest.mark.usefixtures("jobs_worker")
def test_create_job_queues_it_and_a_worker_runs_it(client, clean_db):
    body = {"type": "TEST", "metadata": {"steps": 2, "step_seconds": 0}}
    response = client.post("/api/jobs", json=body)
    assert response.status_code == 201
    job = JobOut.model_validate(response.get_json())
    assert job.status in ("pending", "running", "completed")
    assert job.metadata == {"steps": 2, "step_seconds": 0.0, "fail_at_step": None,
                            "ignore_cancel": False}  # fmt: skip
    assert response.headers["Location"].endswith(f"/api/jobs/{job.id}")
    eventually(lambda: job_status(job.id) == "completed", timeout=15)
    done = client.get(f"/api/jobs/{job.id}").get_json()
    assert done["progress"] == 100 and done["result"]["steps"] == 2


def test_create_job_without_metadata_uses_the_defaults(client, clean_db):
    job = client.post("/api/jobs", json={"type": "TEST"}).get_json()
    assert job["metadata"]["steps"] == 5
    client.post(f"/api/jobs/{job['id']}/cancel")  # no worker needed to run it


@pytest.mark.parametrize(
    ("body", "status", "key_name"),
    [
        ({"type": "TEST", "metadata": {"steps": 0}}, 422, "metadata.steps"),
        ({"type": "TEST", "metadata": {"steps": "5"}}, 422, "metadata.steps"),
        ({"type": "TEST", "metadata": {"colour": "red"}}, 422, "metadata.colour"),
        ({"type": "TEST", "metadata": [1]}, 422, "metadata"),
        ({"type": "NO_SUCH_TYPE"}, 422, "type"),
        ({"metadata": {}}, 422, "type"),
        ({"type": "TEST", "priority": 1}, 422, "priority"),
    ],
)
def test_invalid_job_is_422_naming_the_key_and_creates_nothing(
    client, clean_db, unchanged, body, status, key_name
):
    with unchanged():
        error = error_of(client.post("/api/jobs", json=body), status)
    assert error["key"] == key_name


@pytest.mark.parametrize(
    ("data", "content_type", "status"),
    [
        ("{", "application/json", 400),
        ("[]", "application/json", 400),
        ("", "application/json", 400),
        ('{"type": "TEST", "metadata": {"step_seconds": Infinity}}', "application/json", 400),
        ('{"type": "TEST"}', "application/x-www-form-urlencoded", 415),
    ],
)
def test_malformed_job_request_is_refused_and_creates_nothing(
    client, clean_db, unchanged, data, content_type, status
):
    with unchanged():
        error_of(client.post("/api/jobs", data=data, content_type=content_type), status)


def test_oversized_job_request_is_413_and_creates_nothing(client, app, clean_db, unchanged):
    padding = "x" * app.config["MAX_CONTENT_LENGTH"]
    with unchanged():
        error_of(client.post("/api/jobs", json={"type": "TEST", "pad": padding}), 413)


# -- GET /api/jobs, GET /api/jobs/{id} --------------------------------------------------------


def test_list_jobs_newest_first_with_filters(client, daemon, add_job):
    older = add_job(status="completed")
    newer = add_job(status="pending", daemon=daemon)
    response = client.get("/api/jobs")
    assert response.status_code == 200
    ids = [job.id for job in JobList.model_validate(response.get_json()).jobs]
    assert ids == [newer.id, older.id]

    def listed(query: str) -> list[str]:
        return [job["id"] for job in client.get(f"/api/jobs?{query}").get_json()["jobs"]]

    assert listed("status=completed") == [str(older.id)]
    assert listed(f"daemon_id={daemon.id}") == [str(newer.id)]
    assert listed("type=TEST&limit=1") == [str(newer.id)]
    assert listed("type=METADATA_GENERATE") == []


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("status=sleeping", "status"),
        ("type=nope", "type"),
        ("daemon_id=42", "daemon_id"),
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("page=2", "page"),
    ],
)
def test_invalid_job_query_is_400_naming_the_parameter(client, clean_db, query, parameter):
    error = error_of(client.get(f"/api/jobs?{query}"), 400, "invalid_parameter")
    assert error["parameter"] == parameter


def test_get_job(client, add_job):
    job = add_job(status="running", progress=40, message="Step 3 of 5")
    body = JobOut.model_validate(client.get(f"/api/jobs/{job.id}").get_json())
    assert (body.status, body.progress, body.message) == ("running", 40, "Step 3 of 5")


@pytest.mark.parametrize("ref", [UNKNOWN, "nope"])
def test_unknown_job_is_404(client, clean_db, unchanged, ref):
    error_of(client.get(f"/api/jobs/{ref}"), 404, "not_found")
    with unchanged():
        error_of(client.post(f"/api/jobs/{ref}/cancel"), 404, "not_found")


# -- POST /api/jobs/{id}/cancel ---------------------------------------------------------------


def test_cancel_pending_job_cancels_it_at_once_with_the_reason(client, add_job):
    job = add_job()
    response = client.post(f"/api/jobs/{job.id}/cancel", json={"reason": "not needed"})
    assert response.status_code == 200
    body = JobAction.model_validate(response.get_json())
    assert body.changed is True and body.job.status == "cancelled"
    assert body.job.message == "Cancelled: not needed"


@pytest.mark.usefixtures("jobs_worker")
def test_cancel_running_job_stops_it(client, clean_db):
    job = client.post("/api/jobs", json={"type": "TEST", "metadata": {"steps": 100}}).get_json()
    eventually(lambda: job_status(job["id"]) == "running", timeout=15)
    body = client.post(f"/api/jobs/{job['id']}/cancel").get_json()
    assert body["changed"] is True and body["job"]["status"] in ("cancelling", "cancelled")
    eventually(lambda: job_status(job["id"]) == "cancelled", timeout=10)


def test_cancelling_a_cancelled_job_is_an_idempotent_200(client, add_job, unchanged):
    job = add_job(status="cancelled")
    with unchanged():
        body = client.post(f"/api/jobs/{job.id}/cancel").get_json()
    assert body["changed"] is False and body["job"]["status"] == "cancelled"


@pytest.mark.parametrize("status", ["completed", "failed"])
def test_cancelling_an_ended_job_is_409_and_writes_nothing(client, add_job, unchanged, status):
    job = add_job(status=status)
    with unchanged():
        error_of(client.post(f"/api/jobs/{job.id}/cancel"), 409, "conflict")


@pytest.mark.parametrize("body", [{"reason": 5}, {"reason": "x" * 1001}, {"why": "because"}])
def test_invalid_cancel_body_is_422_and_writes_nothing(client, add_job, unchanged, body):
    job = add_job()
    with unchanged():
        error_of(client.post(f"/api/jobs/{job.id}/cancel", json=body), 422, "invalid")


def test_database_down_is_503(app_without_database, role_tokens):
    client = with_token(app_without_database.test_client(), role_tokens[Role.ADMIN])
    error_of(client.get("/api/jobs"), 503, "unavailable")
    error_of(client.post("/api/jobs", json={"type": "TEST"}), 503, "unavailable")
