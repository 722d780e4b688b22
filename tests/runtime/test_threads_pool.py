"""The high-density mode: many daemons on one daemons worker with Celery's threads pool
(``-P threads``), each its own task and event loop in a pool thread, sharing the process's
control subscriber, lease renewer and bounded database pool (workers/process_services.py).

A private cluster (tests/chaos/cluster.py: its own Redis, database, supervisor and beat) on
threads workers; the tests run in order on it.
"""

from __future__ import annotations

import signal
import time
from datetime import UTC, datetime, timedelta

import psutil
import psycopg2
import pytest
import redis
from sqlalchemy.engine import make_url

from stashhog.events import key
from stashhog.extensions import db
from stashhog.models import Daemon
from stashhog.services import lease
from stashhog.services.daemon_control import start_daemon, stop_daemon
from tests.chaos import invariants
from tests.chaos.cluster import cluster_app, private_cluster
from tests.support.tickers import fresh
from tests.support.wait import eventually
from workers.process_services import THREADS_DB_CONNECTIONS

pytestmark = pytest.mark.chaos
MANY = 50
# A line every 0.2 s and a heartbeat every 0.5 s each: 250 lines/s in all.
LIGHT = {"interval": 0.2, "heartbeat_interval": 0.5}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("threads")
    with private_cluster(tmp, pool="threads", concurrency=MANY + 10) as built:
        yield built


@pytest.fixture(scope="module")
def threads_app(cluster):
    with cluster_app(cluster, daemon_workers=1) as app:  # the density test: all on one
        yield app


def make_daemons(count: int, prefix: str, type: str = "TEST_TICKER", **config) -> list:
    configuration = config or LIGHT
    rows = [Daemon(name=f"{prefix}-{n}", type=type, configuration=configuration)
            for n in range(count)]  # fmt: skip
    db.session.add_all(rows)
    db.session.commit()
    return [row.id for row in rows]


def statuses(ids) -> dict[str, int]:
    db.session.expire_all()
    counts: dict[str, int] = {}
    for daemon_id in ids:
        status = db.session.get(Daemon, daemon_id).status
        counts[status] = counts.get(status, 0) + 1
    return counts


def all_in(ids, status: str) -> bool:
    return statuses(ids).get(status, 0) == len(ids)


def counters(app, worker) -> dict[str, str]:
    client = redis.Redis.from_url(app.config["REDIS_URL"], decode_responses=True)
    with app.app_context():
        return client.hgetall(key("worker", worker.hostname(), str(worker.pid), "services"))


def database_connections(cluster, worker) -> int:
    """pg_stat_activity rows of the worker's process (matched by its TCP client ports)."""
    target = make_url(cluster.database_url)
    tcp = psutil.Process(worker.pid).net_connections("tcp")
    ports = {c.laddr.port for c in tcp if c.raddr and c.raddr.port == (target.port or 5432)}
    conn = psycopg2.connect(host=target.host, port=target.port or 5432, user=target.username,
                            dbname=target.database)  # fmt: skip
    try:
        cursor = conn.cursor()
        cursor.execute("SELECT client_port FROM pg_stat_activity WHERE datname = %s",
                       (target.database,))  # fmt: skip
        return sum(1 for (port,) in cursor.fetchall() if port in ports)
    finally:
        conn.close()


def test_fifty_daemons_share_one_subscriber_one_lease_pipeline_and_a_bounded_pool(
    cluster, threads_app
):
    worker = cluster.daemon_workers[0]
    ids = make_daemons(MANY, "dense")
    for daemon_id in ids:
        start_daemon(daemon_id)
    eventually(lambda: all_in(ids, "RUNNING"), timeout=30, interval=0.2)
    time.sleep(2.0)
    # Every heartbeat on time (0.5 s interval; a second of slack for a loaded machine).
    db.session.expire_all()
    now = datetime.now(UTC)
    late = [d for d in ids if now - fresh(d).last_heartbeat > timedelta(seconds=1.5)]
    assert late == [], f"{len(late)} heartbeats late"
    assert {fresh(d).worker_pid for d in ids} == {worker.pid}  # all in the worker's process

    first = counters(threads_app, worker)
    assert first["pool"] == "threads"
    assert first["control_subscriptions"] == "1" and first["control_registered"] == str(MANY)
    assert first["leases_renewed"] == str(MANY)  # every lease in the one pipeline
    time.sleep(3.0)
    rounds = int(counters(threads_app, worker)["lease_rounds"]) - int(first["lease_rounds"])
    assert 2 <= rounds <= 5, f"{rounds} lease pipelines in 3 s (one a second expected)"
    client = redis.Redis.from_url(threads_app.config["REDIS_URL"])
    control = [c for c in client.client_list()
               if c["name"] == f"stashhog-control:{worker.hostname()}:{worker.pid}"]  # fmt: skip
    assert len(control) == 1 and control[0]["psub"] == "1"
    assert 0 < database_connections(cluster, worker) <= THREADS_DB_CONNECTIONS

    for daemon_id in ids:
        stop_daemon(daemon_id)
    eventually(lambda: all_in(ids, "STOPPED"), timeout=20, interval=0.2)
    assert all(lease.lease_holder(d) is None for d in ids)
    # Unregistered from the process's subscriber (its counters are written every second).
    eventually(lambda: counters(threads_app, worker)["control_registered"] == "0", timeout=3)


def test_kill_9_of_a_threads_worker_fails_over_with_one_instance_each(cluster, threads_app):
    victim = cluster.daemon_workers[0]
    ids = make_daemons(20, "failover")
    for daemon_id in ids:
        start_daemon(daemon_id)
    eventually(lambda: all_in(ids, "RUNNING"), timeout=20, interval=0.2)
    cluster.add_daemons_worker(threads_app.extensions["celery"])
    old = {d: fresh(d).generation for d in ids}
    cluster.signal_tree(victim, signal.SIGKILL)
    victim.proc.wait(5)
    cluster.daemon_workers.remove(victim)
    victim.log.close()

    def moved() -> bool:
        db.session.expire_all()
        return all(
            (row := fresh(d)).status == "RUNNING" and row.generation > old[d]
            and row.worker != victim.hostname() and lease.lease_holder(d) == row.generation
            for d in ids
        )  # fmt: skip

    eventually(moved, timeout=20, interval=0.2)
    for daemon_id in ids:
        stop_daemon(daemon_id)
    eventually(lambda: all_in(ids, "STOPPED"), timeout=20, interval=0.2)
    for daemon_id in ids:
        assert invariants.overlaps(daemon_id) == [], "two instances ran at once"
        assert invariants.sequence_faults(daemon_id) == []


def test_a_stuck_daemon_in_a_threads_worker_ends_by_restarting_the_worker(cluster, threads_app):
    (worker,) = cluster.daemon_workers
    (stuck,) = make_daemons(1, "stuck", type="TEST_STUCK_STOP", block_seconds=600)
    (bystander,) = make_daemons(1, "bystander")
    for daemon_id in (stuck, bystander):
        assert start_daemon(daemon_id, wait=10)["daemon"]["status"] == "RUNNING"
    before = fresh(bystander).generation
    stop_daemon(stuck)
    # STOP_TIMEOUT is 3 s: the supervisor escalates, and the worker restarts its process.
    eventually(lambda: fresh(stuck).status == "STOPPED", timeout=20, interval=0.2)
    log = worker.log_path.read_bytes()
    assert b"restarting worker" in log, "the worker did not restart its process"
    assert worker.proc.poll() is None and psutil.Process(worker.pid).is_running()
    eventually(lambda: log.count(b" ready.") < worker.log_path.read_bytes().count(b" ready."),
               timeout=30, interval=0.2)  # fmt: skip
    # The other daemon was stopped for the restart and runs again (same worker, new image).
    eventually(
        lambda: (row := fresh(bystander)).status == "RUNNING" and row.generation > before
        and lease.lease_holder(bystander) == row.generation,
        timeout=30, interval=0.2,
    )  # fmt: skip
    assert lease.lease_holder(stuck) is None
    stop_daemon(bystander, wait=5)
    assert invariants.overlaps(bystander) == []
