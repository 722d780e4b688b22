"""Start, stop and restart real daemons on a real Celery prefork worker."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import select

from stashhog.control import StopCommand, control_channel, encode_command, send_stop
from stashhog.events import get_redis
from stashhog.extensions import db
from stashhog.models import Daemon, DaemonLog
from stashhog.services import lease
from stashhog.services.daemon_control import restart_daemon, start_daemon, stop_daemon
from tests.support.wait import eventually

FAST = {"log_interval": 0.2, "heartbeat_interval": 0.5, "job_interval": 3600}
pytestmark = pytest.mark.usefixtures("daemons_worker")


def messages(daemon_id) -> list[str]:
    db.session.expire_all()
    query = select(DaemonLog.message).where(DaemonLog.daemon_id == daemon_id).order_by(DaemonLog.id)
    return list(db.session.scalars(query))


def test_start_reaches_running_with_a_heartbeat_within_a_second(make_daemon):
    daemon = make_daemon(configuration=FAST)
    began = time.monotonic()
    result = start_daemon(daemon.id, wait=1.0)
    assert result["changed"] and result["daemon"]["status"] == "RUNNING"
    assert time.monotonic() - began < 1.0
    assert result["daemon"]["last_heartbeat"] is not None
    assert lease.lease_holder(daemon.id) == result["daemon"]["generation"]
    stop_daemon(daemon.id, wait=2)


def test_stop_runs_on_stop_and_reaches_stopped_within_a_second(make_daemon):
    daemon = make_daemon(configuration=FAST)
    start_daemon(daemon.id, wait=2.0)
    began = time.monotonic()
    result = stop_daemon(daemon.id, wait=1.0)
    assert result["daemon"]["status"] == "STOPPED"
    assert time.monotonic() - began < 1.0
    assert "Test daemon stopping" in messages(daemon.id)  # on_stop ran and its line was flushed
    assert lease.lease_holder(daemon.id) is None


def test_start_and_stop_are_idempotent(make_daemon):
    daemon = make_daemon(configuration=FAST)
    assert stop_daemon(daemon.id)["changed"] is False
    first = start_daemon(daemon.id, wait=2.0)
    again = start_daemon(daemon.id)
    assert again["changed"] is False
    assert again["daemon"]["generation"] == first["daemon"]["generation"]
    stop_daemon(daemon.id, wait=2)


def test_restart_applies_new_configuration(make_daemon):
    daemon = make_daemon(configuration=FAST)
    first = start_daemon(daemon.id, wait=2.0)["daemon"]
    db.session.get(Daemon, daemon.id).configuration = {**FAST, "log_interval": 0.05}
    db.session.commit()
    second = restart_daemon(daemon.id, wait=2.0)["daemon"]
    assert second["status"] == "RUNNING" and second["generation"] > first["generation"]
    eventually(lambda: "Test daemon started (log every 0.05s)" in messages(daemon.id))
    stop_daemon(daemon.id, wait=2)


def test_concurrent_starts_give_one_instance(make_daemon, app):
    daemon_id = make_daemon(configuration=FAST).id
    results, barrier = [], threading.Barrier(6)

    def start():
        with app.app_context():
            barrier.wait()
            results.append(start_daemon(daemon_id))

    threads = [threading.Thread(target=start) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(result["changed"] for result in results) == 1
    eventually(lambda: "started on generation" in " ".join(messages(daemon_id)))
    time.sleep(0.5)  # give a (wrong) second instance time to show itself
    started = [m for m in messages(daemon_id) if m.startswith("started on generation")]
    assert len(started) == 1
    stop_daemon(daemon_id, wait=2)


def test_a_start_while_the_previous_instance_is_stopping_gives_one_instance(make_daemon):
    daemon = make_daemon(type="TEST_SLOW_STOP", configuration={"stop_seconds": 0.8})
    first = start_daemon(daemon.id, wait=2.0)["daemon"]
    stop_daemon(daemon.id)  # on_stop takes 0.8 s
    second = start_daemon(daemon.id, wait=6.0)["daemon"]
    assert second["status"] == "RUNNING" and second["generation"] == first["generation"] + 1
    eventually(lambda: f"started on generation {second['generation']}" in messages(daemon.id))
    lines = messages(daemon.id)
    # The old instance finished stopping before the new one started.
    assert lines.index("slow on_stop finished") < lines.index(
        f"started on generation {second['generation']}"
    )
    stop_daemon(daemon.id, wait=3)


def test_disabled_daemon_refuses_to_start(make_daemon):
    from stashhog.errors import Conflict

    daemon = make_daemon(enabled=False)
    with pytest.raises(Conflict, match="disabled"):
        start_daemon(daemon.id)
    db.session.expire_all()
    assert db.session.get(Daemon, daemon.id).desired_state == "STOPPED"


def test_a_crash_in_run_marks_the_daemon_error_with_the_traceback(make_daemon):
    daemon = make_daemon(type="TEST_CRASH", configuration={"crash_after": 0.1},
                         restart_policy="never")  # fmt: skip
    start_daemon(daemon.id, wait=2.0)

    def errored():
        db.session.expire_all()
        row = db.session.get(Daemon, daemon.id)
        return row if row.status == "ERROR" else None

    row = eventually(errored, timeout=3)
    assert "boom from run()" in row.last_error and "Traceback" in row.last_error
    assert any("boom from run()" in m and "Traceback" in m for m in messages(daemon.id))


def test_rapid_start_stop_cycles_never_leave_a_daemon_stopping(make_daemon):
    """A stop that lands while an instance is being dispatched, waiting for the lease,
    claiming the row or tearing down its loop still ends STOPPED."""
    daemon_id = make_daemon(configuration=FAST).id
    for cycle in range(40):
        start_daemon(daemon_id)
        time.sleep((cycle % 5) * 0.003)
        assert stop_daemon(daemon_id, wait=3)["daemon"]["status"] == "STOPPED", cycle
    # The instance releases its lease just after writing STOPPED.
    eventually(lambda: lease.lease_holder(daemon_id) is None, timeout=2)


def test_an_on_stop_that_overruns_is_cut_off_at_the_stop_deadline(make_daemon, app):
    daemon = make_daemon(type="TEST_SLOW_STOP", configuration={"stop_seconds": 30})
    start_daemon(daemon.id, wait=2.0)
    began = time.monotonic()
    result = stop_daemon(daemon.id, wait=15)
    elapsed = time.monotonic() - began
    assert result["daemon"]["status"] == "STOPPED"
    assert app.config["STOP_TIMEOUT"] - 0.5 < elapsed <= app.config["STOP_TIMEOUT"] + 1
    lines = messages(daemon.id)
    assert "on_stop() did not finish within the stop timeout (5s)" in lines
    assert "slow on_stop finished" not in lines
    assert lines[-1].startswith("stopped (")


def test_an_instance_acts_only_on_stop_commands_for_its_generation(make_daemon):
    """Both ends of the control protocol (stashhog.control): noise on the channel and a stop
    for an older generation are ignored; a stop for this one stops it, with no revoke."""
    daemon = make_daemon(configuration=FAST)
    generation = start_daemon(daemon.id, wait=2.0)["daemon"]["generation"]
    eventually(lambda: f"started on generation {generation}" in messages(daemon.id))
    noise = ["not json", '{"action": "reload"}', '{"action": "stop", "generation": "x"}',
             encode_command(StopCommand(generation - 1))]  # fmt: skip
    for message in noise:
        get_redis().publish(control_channel(daemon.id), message)
    time.sleep(0.5)
    db.session.expire_all()
    assert db.session.get(Daemon, daemon.id).status == "RUNNING"

    send_stop(daemon.id, generation, None)  # the message alone: no task id, so no revoke

    eventually(lambda: any(m.startswith("stopped (stop requested") for m in messages(daemon.id)))
    stop_daemon(daemon.id, wait=2)
