"""A start no worker can take ends ERROR with the reason, never STARTING for good: every
daemons worker slot busy (a real ``-c 1`` worker), or a failure its runtime recorded."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import text

from stashhog.database import DB_BUSY_BUDGET
from stashhog.events import get_redis
from stashhog.extensions import db
from stashhog.models import Daemon
from stashhog.services import daemon_capacity, supervisor
from stashhog.services.daemon_control import start_daemon, stop_daemon
from tests.runtime.test_threads_connections import role_with_limit
from tests.support.isolation import own_broker_worker
from tests.support.wait import eventually

QUIET = {"log_interval": 3600, "heartbeat_interval": 1, "job_interval": 3600}


@pytest.fixture
def own_broker(app, worker_env, database_url):
    with own_broker_worker(app, worker_env, database_url, label="capacity") as own:
        yield own


def make(name: str) -> uuid.UUID:
    daemon = Daemon(name=f"{name}-{uuid.uuid4().hex[:6]}", type="TEST_DAEMON",
                    configuration=QUIET)  # fmt: skip
    db.session.add(daemon)
    db.session.commit()
    return daemon.id


def row(daemon_id) -> Daemon:
    db.session.expire_all()
    return db.session.get(Daemon, daemon_id)


def passes_until(predicate, timeout: float) -> None:
    """Supervisor passes, as beat runs them (every 1.5 s; faster here), until ``predicate``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "the supervisor did not get there in time"
        supervisor.reconcile()
        time.sleep(0.5)


def test_a_start_with_every_slot_busy_ends_error_saying_so_and_starts_once_one_is_free(
    clean_db, own_broker
):
    own, worker = own_broker
    first, second = make("first"), make("second")
    assert start_daemon(first, wait=10)["daemon"]["status"] == "RUNNING"
    start_daemon(second)
    started = time.monotonic()
    timeout = supervisor.DISPATCH_TIMEOUT.seconds
    passes_until(lambda: row(second).status == "ERROR", timeout=timeout + 8)
    took = time.monotonic() - started
    failed = row(second)
    assert "every daemons worker slot is busy" in failed.last_error
    assert f"{worker.hostname()} 1/1" in failed.last_error
    assert "start it again" in failed.status_line  # the operator's move: it is not retried
    assert failed.desired_state == "STOPPED"
    assert took < timeout + 5

    health = own.test_client().get("/api/health").get_json()
    assert "daemons workers are full (1 of 1 slots busy)" in health["warnings"]
    assert health["daemon_slots"]["full"] is True

    stop_daemon(first, wait=10)
    # The withdrawn start does not run now that the slot is free.
    time.sleep(2)
    assert row(second).status == "ERROR"
    eventually(lambda: not own.test_client().get("/api/health").get_json()["warnings"], timeout=6)
    assert start_daemon(second, wait=10)["daemon"]["status"] == "RUNNING"
    stop_daemon(second, wait=10)


def test_a_failure_the_runtime_recorded_ends_the_start_in_error(clean_db, own_broker):
    """A runtime that cannot reach the database (no connection to be had) records why in
    Redis; the supervisor writes ERROR with that reason, fenced by the generation."""
    own, worker = own_broker
    daemon_id = make("unstartable")
    worker.stop()  # nobody takes the start: it stays queued, as with a refused child
    start_daemon(daemon_id)
    generation = row(daemon_id).generation
    db.session.execute(text("UPDATE daemons SET updated_at = updated_at - :wait WHERE id = :id"),
                       {"wait": timedelta(seconds=6), "id": daemon_id})  # fmt: skip
    db.session.commit()
    reason = daemon_capacity.describe_start_failure(
        RuntimeError("database connections exhausted: too many clients"), "daemons@box"
    )
    daemon_capacity.record_start_failure(daemon_id, generation + 1, "a stale generation's")
    supervisor.reconcile()
    assert row(daemon_id).status == "STARTING"  # another generation's failure is not this one's
    daemon_capacity.record_start_failure(daemon_id, generation, reason)
    supervisor.reconcile()
    failed = row(daemon_id)
    assert failed.status == "ERROR" and failed.last_error == reason
    assert "database connections exhausted" in failed.status_line
    assert failed.generation == generation + 1  # a copy of the task exits as stale


def test_a_start_whose_worker_gets_no_database_connection_ends_error(
    app, worker_env, database_url, clean_db
):
    """The worker's role may not connect at all (CONNECTION LIMIT 0): its runtime retries for
    DB_BUSY_BUDGET, records why, and the supervisor ends the start in ERROR with it, though
    it had dispatched the start again meanwhile (DISPATCH_TIMEOUT is as long)."""
    roles = role_with_limit(database_url, 0)
    refused = next(roles).render_as_string(hide_password=False)
    try:
        with own_broker_worker(app, worker_env, database_url, label="capacity",
                               DATABASE_URL=refused):  # fmt: skip
            daemon_id = make("no-connection")
            start_daemon(daemon_id)
            timeout = DB_BUSY_BUDGET + supervisor.DISPATCH_TIMEOUT.seconds + 10
            passes_until(lambda: row(daemon_id).status == "ERROR", timeout=timeout)
            failed = row(daemon_id)
            assert failed.last_error.startswith("not started: DatabaseBusy on worker ")
            assert "too many connections for role" in failed.last_error
            assert failed.desired_state == "STOPPED"
    finally:
        roles.close()


def test_an_overdue_start_still_in_the_queue_is_not_sent_again_and_a_lost_one_is(
    clean_db, own_broker
):
    """A thousand starts at once outlast the dispatch timeout while workers take them: an
    overdue start whose message still waits in the daemons queue is left to it (sending it
    again cost a generation and a stale task); once the queue is empty (its message was
    taken by a worker that died), it is sent again."""
    own, worker = own_broker
    daemon_id = make("queued")
    worker.stop()  # nobody takes the start: its message stays in the queue
    start_daemon(daemon_id)
    generation = row(daemon_id).generation
    overdue = supervisor.DISPATCH_TIMEOUT + timedelta(seconds=1)
    db.session.execute(text("UPDATE daemons SET updated_at = updated_at - :wait WHERE id = :id"),
                       {"wait": overdue, "id": daemon_id})  # fmt: skip
    db.session.commit()
    assert get_redis().llen(daemon_capacity.DAEMONS_QUEUE) == 1
    supervisor.reconcile()
    assert row(daemon_id).generation == generation and row(daemon_id).status == "STARTING"

    get_redis().delete(daemon_capacity.DAEMONS_QUEUE)  # as when a worker took it and died
    supervisor.reconcile()
    assert row(daemon_id).generation == generation + 1
    assert get_redis().llen(daemon_capacity.DAEMONS_QUEUE) == 1  # sent again
