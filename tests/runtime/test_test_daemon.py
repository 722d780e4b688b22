"""The TestDaemon's documented behaviour, on real daemons and jobs workers."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from stashhog.extensions import db
from stashhog.models import Daemon, DaemonJobHistory, DaemonLog, Job
from stashhog.services.daemon_control import start_daemon, stop_daemon
from tests.support.wait import eventually

pytestmark = pytest.mark.usefixtures("daemons_worker", "jobs_worker")


def log_rows(daemon_id) -> list[DaemonLog]:
    db.session.expire_all()
    query = select(DaemonLog).where(DaemonLog.daemon_id == daemon_id).order_by(DaemonLog.id)
    return list(db.session.scalars(query))


def history(daemon_id) -> list[tuple[str, str]]:
    db.session.expire_all()
    query = select(DaemonJobHistory).where(DaemonJobHistory.daemon_id == daemon_id)
    return [
        (str(h.job_id), h.action)
        for h in db.session.scalars(query.order_by(DaemonJobHistory.created_at))
    ]


def test_test_daemon_logs_every_level_and_runs_a_test_job_to_completion(make_daemon):
    config = {
        "log_interval": 0.1,
        "job_interval": 1.0,
        "heartbeat_interval": 0.5,
        "simulate_errors": True,
        "job_metadata": {"steps": 2, "step_seconds": 0.2},
    }
    daemon = make_daemon(configuration=config)
    start_daemon(daemon.id, wait=2)

    def finished_job():
        rows = history(daemon.id)
        done = {job for job, action in rows if action == "FINISHED"}
        return [job for job, action in rows if action == "LAUNCHED" and job in done]

    job_ids = eventually(finished_job, timeout=12)
    eventually(lambda: sum("simulated error" in r.message for r in log_rows(daemon.id)) >= 2, 10)
    stop_daemon(daemon.id, wait=3)

    rows = log_rows(daemon.id)
    iterations = [r for r in rows if r.level == "DEBUG" and r.message.startswith("Iteration")]
    assert len(iterations) >= 40
    memory = [r.message for r in rows if r.level == "INFO" and r.message.startswith("Memory")]
    assert len(memory) == len(iterations) // 5
    assert "MB RSS; monitoring" in memory[0]
    warnings = [r for r in rows if r.level == "WARNING" and "periodic warning" in r.message]
    assert len(warnings) == len(iterations) // 10
    errors = [r.message for r in rows if r.level == "ERROR"]
    # Each simulated error is logged with its traceback, and the daemon went on iterating.
    assert all("Traceback" in m for m in errors if "simulated error" in m)
    assert len([m for m in errors if "simulated error" in m]) == len(iterations) // 20
    assert db.session.get(Job, job_ids[0]).status == "completed"
    per_job = [action for job, action in history(daemon.id) if job == job_ids[0]]
    assert per_job == ["LAUNCHED", "FINISHED"]


def test_a_burst_of_ten_thousand_lines_lands_in_order(make_daemon):
    daemon = make_daemon(type="TEST_BURST", configuration={"lines": 10_000})
    start_daemon(daemon.id, wait=2)
    eventually(lambda: len(log_rows(daemon.id)) >= 10_001, timeout=15)
    stop_daemon(daemon.id, wait=3)
    burst = [r for r in log_rows(daemon.id) if r.message.startswith("line ")]
    assert [r.message for r in burst] == [f"line {n}" for n in range(10_000)]
    seqs = [r.seq for r in burst]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


def test_cancel_job_from_a_daemon_records_one_terminal_cancelled(make_daemon, app):
    """A daemon's cancel_job ends the job CANCELLED, with exactly one terminal record."""
    import asyncio
    import uuid

    from workers.job_tracker import JobTracker

    daemon = make_daemon(configuration={"heartbeat_interval": 1.0})
    daemon_id, generation = daemon.id, daemon.generation

    class Host:  # the real tracker on the real services, hosted in-process
        def __init__(self):
            self.daemon_id, self.generation = daemon_id, generation

        async def call_db(self, fn, *args, **kwargs):
            def run():
                with app.app_context():
                    return fn(*args, **kwargs)

            return await asyncio.to_thread(run)

    async def scenario():
        tracker = JobTracker(Host())
        job_id = await tracker.launch("TEST", {"steps": 50, "step_seconds": 0.1}, "test")
        await asyncio.sleep(0.5)
        await tracker.cancel(job_id, "operator asked")
        while job_id in tracker.active:
            await tracker.poll()
            await asyncio.sleep(0.05)
        return job_id

    job_id = asyncio.run(asyncio.wait_for(scenario(), 10))
    assert isinstance(job_id, uuid.UUID)
    actions = [action for job, action in history(daemon_id) if job == str(job_id)]
    assert actions == ["LAUNCHED", "CANCELLED"]
    db.session.expire_all()
    job = db.session.get(Job, job_id)
    assert job.status == "cancelled" and job.progress < 100


def test_a_restarted_daemon_readopts_its_unfinished_jobs(make_daemon):
    from stashhog.services.daemon_control import restart_daemon

    config = {
        "log_interval": 0.1,
        "job_interval": 0.5,
        "heartbeat_interval": 0.5,
        "job_metadata": {"steps": 4, "step_seconds": 0.5},
    }
    daemon = make_daemon(configuration=config)
    start_daemon(daemon.id, wait=2)
    launched = eventually(
        lambda: [job for job, action in history(daemon.id) if action == "LAUNCHED"], 5
    )[0]
    db.session.get(Daemon, daemon.id).configuration = {**config, "job_interval": 3600}
    db.session.commit()
    restart_daemon(daemon.id, wait=3)  # the job is still running

    def outcome():
        actions = [action for job, action in history(daemon.id) if job == launched]
        return actions if "FINISHED" in actions else None

    actions = eventually(outcome, timeout=10)
    assert actions == ["LAUNCHED", "MONITORED", "FINISHED"]
    stop_daemon(daemon.id, wait=3)


def test_the_job_cap_holds_and_the_test_daemon_logs_and_skips_past_it(make_daemon):
    from stashhog.services.job_service import cancel_job

    config = {
        "log_interval": 0.05,
        "job_interval": 0.5,
        "heartbeat_interval": 0.5,
        "max_active_jobs": 2,
        "job_metadata": {"steps": 1, "step_seconds": 60},  # still running when the cap bites
    }
    daemon = make_daemon(configuration=config)
    start_daemon(daemon.id, wait=2)

    def skipped():
        return [r.message for r in log_rows(daemon.id) if "Skipped a TEST job" in r.message]

    try:
        eventually(lambda: len(skipped()) >= 3, timeout=10)
        db.session.expire_all()
        jobs = db.session.scalars(select(Job).where(Job.daemon_id == daemon.id)).all()
        assert len(jobs) == 2
        assert "max_active_jobs is 2" in skipped()[0]
        assert db.session.get(Daemon, daemon.id).status == "RUNNING"  # skipping is no error
        launched = [action for _job, action in history(daemon.id) if action == "LAUNCHED"]
        assert len(launched) == 2
    finally:
        stop_daemon(daemon.id, wait=3)
        for job in db.session.scalars(select(Job).where(Job.daemon_id == daemon.id)):
            cancel_job(job.id)  # free the jobs worker for the tests after this one
