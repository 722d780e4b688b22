"""A deploy: SIGTERM to the daemons worker stops its daemons cleanly and it exits quickly."""

from __future__ import annotations

import signal
import time

from sqlalchemy import select

from stashhog.control import mark_shutting_down, shutdown_mark
from stashhog.events import get_redis
from stashhog.extensions import db
from stashhog.models import Daemon, DaemonLog
from stashhog.services import lease
from stashhog.services.daemon_control import start_daemon
from tests.support.isolation import dedicated_daemons_worker
from tests.support.wait import eventually

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


def test_an_instance_that_starts_listening_after_the_shutdown_stop_still_stops(
    make_daemon, worker_env, celery_app
):
    """The shutdown's stop message is not replayed to an instance that subscribes later (a
    start a moment before SIGTERM: it ran on and held the warm shutdown up, seen in CI). The
    worker's shutting-down mark is: such an instance stops as for the shutdown, desired
    state kept RUNNING."""
    daemon = make_daemon(configuration=FAST)
    with dedicated_daemons_worker(worker_env, celery_app) as worker:
        mark_shutting_down(worker.hostname(), worker.pid)  # as the hook does, before the start
        start_daemon(daemon.id)
        row = eventually(lambda: stopped_row(daemon.id), timeout=15)
        assert row.desired_state == "RUNNING" and row.status_line == "worker shut down"
        get_redis().delete(shutdown_mark(worker.hostname(), worker.pid))


def stopped_row(daemon_id):
    db.session.expire_all()
    row = db.session.get(Daemon, daemon_id)
    return row if row.status == "STOPPED" and row.generation > 0 else None
