"""Each task reaches exactly its own queue, so only the workers meant for it run it."""

import time
import uuid

from stashhog.celery_app import send_task
from stashhog.models.enums import STOPPED_STATES
from stashhog.services import daemon_control, daemon_queries
from tests.support.wait import eventually


def free_every_daemon_slot() -> None:
    """Daemons earlier tests left running hold pool slots, and a worker with every slot busy
    takes no new task (no prefetch): stop them first."""
    daemon_control.stop_all()
    for daemon in daemon_queries.list_daemons():
        if daemon["status"] not in STOPPED_STATES:
            daemon_control.wait_for_status(uuid.UUID(daemon["id"]), STOPPED_STATES, 15)


def test_daemon_and_job_tasks_reach_only_their_own_workers(app_ctx, daemons_worker, jobs_worker):
    free_every_daemon_slot()
    marker = str(uuid.uuid4())  # an unknown daemon and job: each task just returns
    send_task("stashhog.run_daemon", marker, 1, task_id=f"daemon-{marker}")
    send_task("stashhog.run_job", marker, task_id=f"job-{marker}")

    def received(worker, task_id):
        return f"[{task_id}] received" in worker.log_path.read_text(errors="replace")

    eventually(lambda: received(daemons_worker, f"daemon-{marker}"), timeout=10)
    eventually(lambda: received(jobs_worker, f"job-{marker}"), timeout=10)
    time.sleep(1.0)  # time for a wrongly routed copy to arrive too
    assert not received(jobs_worker, f"daemon-{marker}")
    assert not received(daemons_worker, f"job-{marker}")
