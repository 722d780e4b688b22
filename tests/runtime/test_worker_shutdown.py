"""A deploy: SIGTERM to the daemons worker stops its daemons cleanly and it exits quickly."""

from __future__ import annotations

import signal
import time

from sqlalchemy import select

from stashhog.extensions import db
from stashhog.models import Daemon, DaemonLog
from stashhog.services import lease
from stashhog.services.daemon_control import start_daemon
from tests.support.isolation import dedicated_daemons_worker

FAST = {"log_interval": 0.2, "heartbeat_interval": 0.5, "job_interval": 3600}


def test_sigterm_to_the_worker_stops_its_daemons_and_keeps_them_desired_running(
    make_daemon, worker_env, celery_app
):
    daemons = [make_daemon(configuration=FAST) for _ in range(2)]
    with dedicated_daemons_worker(worker_env, celery_app) as worker:
        for daemon in daemons:
            assert start_daemon(daemon.id, wait=3)["daemon"]["worker"] == worker.hostname()
        began = time.monotonic()
        worker.proc.send_signal(signal.SIGTERM)
        worker.proc.wait(15)
        exited_after = time.monotonic() - began
    assert exited_after < 5, f"worker took {exited_after:.1f}s to exit"
    db.session.expire_all()
    for daemon in daemons:
        row = db.session.get(Daemon, daemon.id)
        assert row.status == "STOPPED" and row.desired_state == "RUNNING"
        assert row.status_line == "worker shut down"
        assert lease.lease_holder(daemon.id) is None
        messages = db.session.scalars(
            select(DaemonLog.message).where(DaemonLog.daemon_id == daemon.id)
        ).all()
        assert "Test daemon stopping" in messages  # on_stop ran, its line was flushed
