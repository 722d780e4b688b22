"""Each task reaches exactly its own queue, so only the workers meant for it run it."""

import time
import uuid

from stashhog.celery_app import send_task
from tests.support.wait import eventually


def test_daemon_and_job_tasks_reach_only_their_own_workers(app_ctx, daemons_worker, jobs_worker):
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
