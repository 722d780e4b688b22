"""Jobs end to end: the service on real PostgreSQL and Redis, run by a real Celery jobs worker."""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from stashhog.celery_app import send_task
from stashhog.errors import JobNotFound, JobValidationError
from stashhog.events import EventType, event_channel, get_redis
from stashhog.extensions import db
from stashhog.jobs import JobCancelled, JobContext
from stashhog.models import Job, JobStatus, JobType
from stashhog.models.types import utcnow
from stashhog.serializers import job_to_dict
from stashhog.services import job_service
from stashhog.services.job_service import (
    cancel_job,
    create_job,
    enforce_cancellations,
    get_job,
    list_jobs,
)

QUICK = {"steps": 3, "step_seconds": 0.1}
LONG = {"steps": 1, "step_seconds": 30.0}


def wait_for(predicate, timeout: float = 5.0, interval: float = 0.02, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def wait_status(job_id, *statuses: str, timeout: float = 5.0) -> Job:
    def current():
        job = get_job(job_id)
        return job if job.status in statuses else None

    return wait_for(current, timeout, what=f"job {job_id} to be {'/'.join(statuses)}")


def active_task_ids(celery_app) -> set[str]:
    replies = celery_app.control.inspect(timeout=1.0).active() or {}
    return {task["id"] for tasks in replies.values() for task in tasks}


def worker_logged(worker, *needles: str) -> bool:
    text = worker.log_path.read_text(errors="replace")
    return any(needle in text for needle in needles)


@pytest.fixture
def jobs(clean_db, jobs_worker):
    """A clean database and a running jobs worker; no job of this test outlives it."""
    yield jobs_worker
    for job in list_jobs(limit=1000):
        if not JobStatus(job.status).is_terminal:
            cancel_job(job.id)
    try:
        wait_for(lambda: all(JobStatus(j.status).is_terminal for j in list_jobs(limit=1000)), 2.0)
    except AssertionError:
        enforce_cancellations(grace=0)


@pytest.fixture
def job_events(app_ctx):
    """Collects job_update events from Redis pub/sub, subscribed before the test acts."""
    pubsub = get_redis().pubsub()
    pubsub.subscribe(event_channel(EventType.JOB_UPDATE))
    assert pubsub.get_message(timeout=2)["type"] == "subscribe"

    def until_terminal(job_id, timeout: float = 5.0) -> list[dict]:
        events, deadline = [], time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = pubsub.get_message(timeout=0.1)
            if not message or message["type"] != "message":
                continue
            event = json.loads(message["data"])
            if event["job"]["id"] == str(job_id):
                events.append(event)
                if JobStatus(event["job"]["status"]).is_terminal:
                    return events
        raise AssertionError(f"no terminal event for job {job_id}; saw {events}")

    yield until_terminal
    pubsub.close()


def test_test_job_completes_with_progress_result_and_timestamps(jobs):
    job = create_job(JobType.TEST, QUICK)
    assert job.status == JobStatus.PENDING

    done = wait_status(job.id, JobStatus.COMPLETED)
    assert done.progress == 100
    assert done.result["steps"] == 3 and done.result["elapsed"] >= 0.3
    assert done.error is None
    assert done.created_at <= done.started_at <= done.completed_at


def test_progress_and_message_move_through_the_steps(jobs, job_events):
    job = create_job(JobType.TEST, QUICK)
    events = job_events(job.id)

    seen = [(e["job"]["status"], e["job"]["progress"], e["job"]["message"]) for e in events]
    assert seen == [
        ("pending", 0, None),
        ("running", 0, None),
        ("running", 0, "Step 1 of 3"),
        ("running", 33, "Step 2 of 3"),
        ("running", 66, "Step 3 of 3"),
        ("completed", 100, "Step 3 of 3"),
    ]


def test_job_update_events_carry_the_job_dict_and_daemon_id(jobs, job_events, make_daemon):
    daemon = make_daemon()
    job = create_job(JobType.TEST, {"steps": 1, "step_seconds": 0}, daemon_id=daemon.id)
    events = job_events(job.id)

    final = get_job(job.id)
    assert {e["type"] for e in events} == {"job_update"}
    assert {e["daemon_id"] for e in events} == {str(daemon.id)}
    assert all(e["job"].keys() == job_to_dict(final).keys() for e in events)
    assert events[-1]["job"] == job_to_dict(final)


def test_cancelling_a_running_job_stops_it_within_a_second(jobs, celery_app):
    job = create_job(JobType.TEST, {"steps": 5, "step_seconds": 1.0})
    wait_for(lambda: get_job(job.id).message == "Step 2 of 5", what="step 2")

    started = time.monotonic()
    assert cancel_job(job.id, reason="operator").status == JobStatus.CANCELLING
    cancelled = wait_status(job.id, JobStatus.CANCELLED, timeout=1.0)
    assert time.monotonic() - started < 1.0

    assert cancelled.progress < 100 and cancelled.result is None
    assert cancelled.message == "Cancelled: operator"
    assert cancelled.completed_at is not None
    wait_for(lambda: job.celery_task_id not in active_task_ids(celery_app), what="task to end")


def test_a_job_cancelled_while_queued_never_runs(jobs, celery_app):
    stats = celery_app.control.inspect(timeout=1.0).stats() or {}
    slots = stats[jobs.hostname()]["pool"]["max-concurrency"]
    blockers = [create_job(JobType.TEST, LONG) for _ in range(slots)]
    for blocker in blockers:
        wait_status(blocker.id, JobStatus.RUNNING)

    queued = create_job(JobType.TEST, QUICK)
    time.sleep(0.3)
    assert get_job(queued.id).status == JobStatus.PENDING, "no free slot, so it must wait"
    assert cancel_job(queued.id).status == JobStatus.CANCELLED

    for blocker in blockers:
        cancel_job(blocker.id)
    task = f"stashhog.run_job[{queued.celery_task_id}]"
    wait_for(
        lambda: worker_logged(jobs, f"Discarding revoked task: {task}", f"job {queued.id} is not"),
        what="the worker to drop the queued task",
    )
    after = get_job(queued.id)
    assert after.status == JobStatus.CANCELLED
    assert after.started_at is None and after.progress == 0


def test_the_task_refuses_a_job_that_is_not_pending(jobs):
    job = Job(type=JobType.TEST, status=JobStatus.CANCELLED, job_metadata=QUICK)
    db.session.add(job)
    db.session.commit()
    job_id = job.id

    send_task("stashhog.run_job", str(job_id), queue="jobs")
    wait_for(lambda: worker_logged(jobs, f"job {job_id} is not pending"), what="the task")
    after = get_job(job_id)
    assert after.status == JobStatus.CANCELLED and after.started_at is None


def test_a_failing_handler_ends_failed_with_the_error(jobs):
    job = create_job(JobType.TEST, {"steps": 3, "step_seconds": 0.05, "fail_at_step": 2})

    failed = wait_status(job.id, JobStatus.FAILED)
    assert failed.error == "RuntimeError: simulated failure at step 2"
    assert failed.progress == 33 and failed.result is None
    assert failed.completed_at is not None


def test_a_job_ignoring_cancel_is_terminated_after_the_grace(jobs, celery_app):
    job = create_job(JobType.TEST, {**LONG, "ignore_cancel": True})
    wait_status(job.id, JobStatus.RUNNING)
    pool_before = {child.pid for child in jobs.children()}

    cancel_job(job.id)
    time.sleep(0.3)
    assert get_job(job.id).status == JobStatus.CANCELLING, "the handler ignores the request"
    assert enforce_cancellations(grace=60) == []

    assert [j.id for j in enforce_cancellations(grace=0)] == [job.id]
    assert get_job(job.id).status == JobStatus.CANCELLED
    wait_for(lambda: job.celery_task_id not in active_task_ids(celery_app), what="termination")
    # The SIGTERM was handled as a cancel, so the pool kept its process.
    assert {child.pid for child in jobs.children()} == pool_before
    next_job = create_job(JobType.TEST, {"steps": 1, "step_seconds": 0})
    wait_status(next_job.id, JobStatus.COMPLETED)


@pytest.mark.parametrize(
    ("job_type", "metadata", "key"),
    [
        (JobType.TEST, {"steps": 2, "bogus": 1}, "bogus"),
        (JobType.TEST, {"steps": "many"}, "steps"),
        (JobType.TEST, {"steps": 0}, "steps"),
        (JobType.TEST, {"step_seconds": 3601}, "step_seconds"),
        (JobType.TEST, ["steps"], "metadata"),
        ("NO_SUCH_TYPE", {}, "type"),
    ],
)
def test_invalid_requests_name_the_key_and_insert_nothing(clean_db, job_type, metadata, key):
    with pytest.raises(JobValidationError) as error:
        create_job(job_type, metadata)

    assert error.value.key == key
    assert str(error.value).startswith(f"{key}: ")
    assert db.session.scalar(select(func.count()).select_from(Job)) == 0


def test_metadata_is_stored_with_its_defaults(jobs):
    job = create_job(JobType.TEST, {"steps": 1, "step_seconds": 0})
    stored = get_job(job.id).job_metadata
    assert stored == {"steps": 1, "step_seconds": 0.0, "fail_at_step": None, "ignore_cancel": False}
    assert create_job(JobType.TEST).job_metadata["steps"] == 5


def test_cancelling_a_finished_job_changes_nothing(jobs):
    job = create_job(JobType.TEST, {"steps": 1, "step_seconds": 0})
    done = wait_status(job.id, JobStatus.COMPLETED)
    before = job_to_dict(done)

    assert job_to_dict(cancel_job(job.id)) == before
    assert job_to_dict(get_job(job.id)) == before


def test_a_terminal_state_is_never_overwritten(clean_db):
    job = insert_job(JobStatus.RUNNING)
    assert cancel_job(job.id).status == JobStatus.CANCELLING
    assert job_service.report_progress(job.id, 50, "late") is None
    assert job_service.mark_cancelled(job.id).status == JobStatus.CANCELLED

    assert job_service.complete_job(job.id, {"late": True}) is None
    assert job_service.fail_job(job.id, "late") is None
    assert job_service.start_job(job.id) is None
    final = get_job(job.id)
    assert (final.status, final.result, final.error) == (JobStatus.CANCELLED, None, None)


def test_list_jobs_filters_newest_first(clean_db, make_daemon):
    daemon = make_daemon()
    oldest = insert_job(JobStatus.COMPLETED, age=30)
    middle = insert_job(JobStatus.FAILED, age=20, daemon_id=daemon.id)
    newest = insert_job(JobStatus.COMPLETED, age=10, daemon_id=daemon.id)

    assert ids(list_jobs()) == [newest.id, middle.id, oldest.id]
    assert ids(list_jobs(status=JobStatus.COMPLETED)) == [newest.id, oldest.id]
    assert ids(list_jobs(daemon_id=daemon.id, limit=1)) == [newest.id]
    assert ids(list_jobs(type=JobType.METADATA_GENERATE)) == []


def test_unknown_ids(clean_db):
    assert get_job(uuid.uuid4()) is None
    assert get_job("not-a-uuid") is None
    for unknown in (uuid.uuid4(), "not-a-uuid"):
        with pytest.raises(JobNotFound):
            cancel_job(unknown)


def test_context_sleep_stops_soon_after_a_cancel():
    flag = threading.Event()
    ctx = JobContext(uuid.uuid4(), None, on_progress=print, probe_cancelled=flag.is_set)
    threading.Timer(0.2, flag.set).start()

    started = time.monotonic()
    with pytest.raises(JobCancelled):
        ctx.sleep(10)
    assert 0.2 <= time.monotonic() - started < 0.4


def insert_job(status: str, age: float = 0, **fields) -> Job:
    """A job row written directly, never sent to a worker."""
    created = utcnow() - timedelta(seconds=age)
    job = Job(type=JobType.TEST, status=status, job_metadata={}, created_at=created, **fields)
    db.session.add(job)
    db.session.commit()
    return job


def ids(jobs: list[Job]) -> list[uuid.UUID]:
    return [job.id for job in jobs]
