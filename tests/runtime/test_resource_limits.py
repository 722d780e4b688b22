"""Resource limits on real workers sampling every 0.5 s: the Test Daemon grows its RSS
(``allocate_mb_per_iteration``) or spins the CPU (``busy_fraction``) past ``max_memory_mb`` /
``max_cpu_percent``; its runtime restarts it as a crash (counted in ``restart_count``), stops
it, or only warns, with the reason in a log line, an event, ``last_error`` and its run. A
runtime that cannot act (its process frozen) is enforced by the supervisor."""

from __future__ import annotations

import contextlib
import os
import signal

import pytest
from sqlalchemy import select

from stashhog.events import get_redis, key
from stashhog.extensions import db
from stashhog.models import Daemon, DaemonLog, DaemonMetric
from stashhog.services.daemon_configuration import update_daemon
from stashhog.services.daemon_control import start_daemon, stop_daemon
from tests.api.conftest import next_event
from tests.observability.conftest import sampling_worker  # noqa: F401  (a module fixture)
from tests.observability.test_crash_alert import passes_until
from tests.supervision.test_reconciler import gone, supervisor_lines
from tests.support.wait import eventually

pytestmark = pytest.mark.usefixtures("sampling_worker")
FAST = {"log_interval": 0.25, "heartbeat_interval": 0.5, "job_interval": 3600}
GROWING = {**FAST, "allocate_mb_per_iteration": 20}  # 80 MB/s from about 110 MB
SPINNING = {**FAST, "busy_fraction": 0.9}
MB = 1024 * 1024


def row(daemon_id) -> Daemon:
    db.session.expire_all()
    return db.session.get(Daemon, daemon_id)


def lines(daemon_id, level: str) -> list[str]:
    db.session.expire_all()
    query = select(DaemonLog.message).where(DaemonLog.daemon_id == daemon_id)
    return list(db.session.scalars(query.where(DaemonLog.level == level).order_by(DaemonLog.id)))


def rss_samples(daemon_id, generation: int) -> list[int]:
    db.session.expire_all()
    query = select(DaemonMetric.rss).where(
        DaemonMetric.daemon_id == daemon_id, DaemonMetric.generation == generation
    )
    return list(db.session.scalars(query.order_by(DaemonMetric.id)))


@contextlib.contextmanager
def limit_events():
    pubsub = get_redis().pubsub()
    pubsub.subscribe(key("events", "all"))
    pubsub.get_message(timeout=1)  # the subscription's confirmation
    try:
        yield pubsub
    finally:
        pubsub.close()


def last_run(client, daemon_id) -> dict:
    return client.get(f"/api/daemons/{daemon_id}/runs").json["runs"][0]


def test_a_daemon_growing_past_max_memory_mb_restarts_as_a_crash_in_the_budget(client, make_daemon):
    daemon = make_daemon(configuration=GROWING, max_memory_mb=200)
    with limit_events() as pubsub:
        generation = start_daemon(daemon.id, wait=3)["daemon"]["generation"]
        event = next_event(pubsub, "daemon_limit", timeout=10)
    assert event["daemon_id"] == str(daemon.id) and event["limit"] == "max_memory_mb"
    assert event["measured"] > 200 and event["threshold"] == 200
    assert (event["action"], event["by"]) == ("restart", "runtime")

    ended = eventually(lambda: row(daemon.id).status == "ERROR" and row(daemon.id), timeout=10)
    reason = ended.last_error
    assert reason.startswith("memory limit exceeded: RSS ") and "> max_memory_mb 200" in reason
    assert "limit_action=restart" in reason
    assert rss_samples(daemon.id, generation)[0] < 200 * MB  # it grew past the limit
    assert any(line == f"resource limit: {reason}" for line in lines(daemon.id, "ERROR"))
    run = last_run(client, daemon.id)
    assert (run["generation"], run["outcome"], run["error"]) == (generation, "crashed", reason)

    # As after a crash: a restart after the backoff, counted in the budget.
    passes_until(lambda: row(daemon.id).restart_count == 1 and row(daemon.id).generation
                 > generation)  # fmt: skip
    assert any("crashed; restarting in 1s" in line for line in supervisor_lines(daemon.id))
    stop_daemon(daemon.id, wait=5)


def test_with_limit_action_stop_a_daemon_past_max_memory_mb_ends_stopped(client, make_daemon):
    daemon = make_daemon(configuration=GROWING, max_memory_mb=200, limit_action="stop")
    start_daemon(daemon.id, wait=3)
    ended = eventually(lambda: row(daemon.id).status == "STOPPED" and row(daemon.id), timeout=10)
    assert ended.desired_state == "STOPPED"
    assert ended.last_error.startswith("memory limit exceeded")
    assert "limit_action=stop" in ended.last_error and ended.status_line == ended.last_error
    run = last_run(client, daemon.id)
    assert (run["outcome"], run["error"]) == ("stopped", ended.last_error)
    for _ in range(3):
        passes_until(lambda: True)
    assert row(daemon.id).status == "STOPPED" and row(daemon.id).generation == ended.generation


def test_a_daemon_spinning_past_max_cpu_percent_is_stopped(make_daemon):
    daemon = make_daemon(configuration=SPINNING, max_cpu_percent=30.0, limit_action="stop")
    start_daemon(daemon.id, wait=3)
    ended = eventually(lambda: row(daemon.id).status == "STOPPED" and row(daemon.id), timeout=15)
    assert ended.last_error.startswith("CPU limit exceeded: ")
    assert "% over the last 3 samples > max_cpu_percent 30" in ended.last_error
    assert any("CPU limit exceeded" in line for line in lines(daemon.id, "ERROR"))


def test_with_limit_action_warn_a_breach_is_logged_once_a_minute_only(make_daemon):
    # Every sample breaches (its RSS is about 110 MB from the start).
    daemon = make_daemon(configuration=FAST, max_memory_mb=16, limit_action="warn")
    with limit_events() as pubsub:
        generation = start_daemon(daemon.id, wait=3)["daemon"]["generation"]
        event = next_event(pubsub, "daemon_limit", timeout=10)
    assert (event["limit"], event["action"]) == ("max_memory_mb", "warn")
    # Three more samples, each still over the limit: no second warning within the minute.
    seen = len(rss_samples(daemon.id, generation))
    eventually(lambda: len(rss_samples(daemon.id, generation)) >= seen + 3, timeout=10)
    warnings = [line for line in lines(daemon.id, "WARNING") if "resource limit" in line]
    assert len(warnings) == 1 and "limit_action=warn" in warnings[0]
    current = row(daemon.id)
    assert (current.status, current.generation, current.last_error) == ("RUNNING", generation, None)
    stop_daemon(daemon.id, wait=5)


def test_a_frozen_runtime_past_its_limit_is_killed_by_the_supervisor(client, make_daemon):
    daemon = make_daemon(configuration=FAST, limit_action="stop")
    generation = start_daemon(daemon.id, wait=3)["daemon"]["generation"]
    eventually(lambda: rss_samples(daemon.id, generation), timeout=5)
    pid = row(daemon.id).worker_pid
    os.kill(pid, signal.SIGSTOP)  # as if stuck in C code: no sample, no action of its own
    try:
        update_daemon(daemon.id, max_memory_mb=16)  # its last sample (~110 MB) breaches
        ended = passes_until(lambda: row(daemon.id).status == "STOPPED" and row(daemon.id))
        eventually(lambda: gone(pid), timeout=5)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)
    assert ended.desired_state == "STOPPED" and ended.generation == generation + 1
    assert ended.last_error.startswith("memory limit exceeded")
    assert "> max_memory_mb 16 (limit_action=stop; enforced by the supervisor)" in ended.last_error
    assert any("its runtime did not act: killing it (SIGKILL)" in line
               for line in supervisor_lines(daemon.id))  # fmt: skip
    run = last_run(client, daemon.id)
    assert (run["outcome"], run["error"]) == ("killed", ended.last_error)
