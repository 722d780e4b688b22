"""Start order on real workers: what a daemon depends on comes up (RUNNING, with a heartbeat)
before it, by the command itself or by the supervisor's passes; failover and cluster start
follow the same order; a dependency in ERROR holds its dependents waiting."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import delete, select

from stashhog.extensions import db
from stashhog.models import ClusterState, Daemon, DaemonLog
from stashhog.services import daemon_queries, supervisor
from stashhog.services.daemon_control import restart_daemon, start_daemon, stop_all, stop_daemon
from tests.api.conftest import stop_everything  # noqa: F401  (a fixture)
from tests.support.dependencies import TICKER, make_chain
from tests.support.isolation import dedicated_daemons_worker
from tests.support.wait import eventually

# Most of the first heartbeat's delay after a claim (see TICKER).
HEARTBEAT_GAP = timedelta(seconds=0.4)
pytestmark = pytest.mark.usefixtures("daemons_worker", "stop_everything")


@pytest.fixture
def chain(make_daemon):
    """chain-a ← chain-b ← chain-c."""
    return make_chain(make_daemon, "chain")


def rows(*daemons) -> list[Daemon]:
    db.session.expire_all()
    return [db.session.get(Daemon, daemon.id) for daemon in daemons]


def lines(daemon) -> list[str]:
    db.session.expire_all()
    query = select(DaemonLog.message).where(DaemonLog.daemon_id == daemon.id)
    return list(db.session.scalars(query.order_by(DaemonLog.id)))


def heartbeated(row: Daemon) -> bool:
    return row.status == "RUNNING" and row.last_heartbeat > row.started_at


def passes_until(condition, timeout: float = 15, check=lambda: None):
    """Supervisor passes (as beat would run them) until ``condition()``; ``check()`` after each."""

    def one_pass():
        supervisor.reconcile()
        check()
        return condition()

    return eventually(one_pass, timeout=timeout, interval=0.1)


def test_a_start_waits_for_each_dependency_to_heartbeat_in_order(chain):
    a, b, c = chain
    result = start_daemon(c.id, wait=20)
    assert result["dependencies_started"] == ["chain-a", "chain-b"]
    ra, rb, rc = rows(a, b, c)
    assert all(row.status == "RUNNING" for row in (ra, rb, rc))
    # Each claimed only after the one before had beaten, about 0.5 s after its own claim.
    assert rb.started_at - ra.started_at >= HEARTBEAT_GAP
    assert rc.started_at - rb.started_at >= HEARTBEAT_GAP
    assert "starting chain-a: needed by chain-b" in lines(a)
    assert "starting chain-b: needed by chain-c" in lines(b)
    assert "start order: chain-a → chain-b → chain-c" in lines(c)


def test_without_waiting_the_supervisor_starts_each_once_what_it_needs_has_beaten(chain):
    a, b, c = chain
    result = start_daemon(c.id)
    assert result["message"] == "starts once chain-b is ready"
    assert result["daemon"]["waiting_for"] == ["chain-b"]
    assert result["daemon"]["status_line"] == "waiting for chain-b"
    _, rb, rc = rows(a, b, c)
    assert (rb.desired_state, rb.status) == ("RUNNING", "STOPPED")
    assert rc.desired_state == "RUNNING" and rc.generation == c.generation

    def in_order():
        ra, rb, rc = rows(a, b, c)
        if rb.status != "STOPPED":  # B's instance was asked for by the pass just made
            assert heartbeated(ra), "chain-b started before chain-a had a heartbeat"
        if rc.status != "STOPPED":
            assert heartbeated(rb), "chain-c started before chain-b had a heartbeat"

    passes_until(lambda: all(heartbeated(row) for row in rows(a, b, c)), check=in_order)
    assert daemon_queries.get_daemon(c.id)["waiting_for"] == []
    started = "supervisor: desired RUNNING but no instance: starting (what it depends on is ready)"
    assert started in lines(c)


def test_stop_all_stops_dependents_before_what_they_need(chain):
    a, b, c = chain
    start_daemon(c.id, wait=20)
    result = stop_all()
    assert not result["errors"]
    eventually(lambda: all(row.status == "STOPPED" for row in rows(a, b, c)), timeout=10)
    ra, rb, rc = rows(a, b, c)
    assert rc.stopped_at < rb.stopped_at < ra.stopped_at


def test_stopping_a_dependency_stops_its_dependents_first(chain):
    a, b, c = chain
    start_daemon(c.id, wait=20)
    result = stop_daemon(a.id, wait=10)
    assert result["dependents_stopped"] == ["chain-c", "chain-b"]
    ra, rb, rc = rows(a, b, c)
    assert {row.status for row in (ra, rb, rc)} == {"STOPPED"}
    assert {row.desired_state for row in (ra, rb, rc)} == {"STOPPED"}
    assert rc.stopped_at < rb.stopped_at < ra.stopped_at
    assert any("stopping chain-c first: it needs chain-a" in line for line in lines(c))


def test_a_restart_of_a_dependency_restarts_its_dependents_once_it_is_healthy(chain):
    a, b, c = chain
    start_daemon(c.id, wait=20)
    before = [row.generation for row in rows(a, b, c)]
    result = restart_daemon(a.id, wait=20)
    assert result["dependents_stopped"] == ["chain-c", "chain-b"]
    assert result["dependents_restarted"] == ["chain-b", "chain-c"]
    ra, rb, rc = rows(a, b, c)
    assert all(row.status == "RUNNING" for row in (ra, rb, rc))
    assert [row.generation for row in (ra, rb, rc)] == [number + 1 for number in before]
    assert rb.started_at - ra.started_at >= HEARTBEAT_GAP
    assert rc.started_at - rb.started_at >= HEARTBEAT_GAP


def test_a_dependency_in_error_holds_its_dependent_waiting(make_daemon):
    broken = make_daemon("needed-crasher", type="TEST_CRASH", configuration={"crash_after": 0.05},
                         restart_policy="never")  # fmt: skip
    needy = make_daemon("needy", type="TEST_TICKER", configuration=TICKER,
                        depends_on=[str(broken.id)])  # fmt: skip
    start_daemon(needy.id)
    eventually(lambda: rows(broken)[0].status == "ERROR", timeout=5)
    passes_until(lambda: rows(broken)[0].desired_state == "STOPPED")  # gave up: never restarts
    for _ in range(3):
        supervisor.reconcile()
    row = rows(needy)[0]
    assert (row.status, row.desired_state) == ("STOPPED", "RUNNING")
    assert row.generation == needy.generation  # never started, so never crash-looped
    assert row.status_line == "waiting for needed-crasher"
    shown = daemon_queries.get_daemon(needy.id)
    assert shown["waiting_for"] == ["needed-crasher"]
    assert (shown["health"], shown["health_reason"]) == ("unhealthy", "waiting for needed-crasher")


def test_failover_brings_a_dependency_back_before_its_dependent(
    make_daemon, worker_env, celery_app
):
    # A beats every 2 s: its new instance is not ready before B's lease (taken up to a
    # renewal, 1 s, later than A's last) lapses too, so B is seen waiting for it.
    slow = {**TICKER, "heartbeat_interval": 2.0}
    a = make_daemon("fail-a", type="TEST_TICKER", configuration=slow)
    b = make_daemon("fail-b", type="TEST_TICKER", configuration=TICKER)
    with dedicated_daemons_worker(worker_env, celery_app) as worker:
        start_daemon(a.id)
        start_daemon(b.id, wait=5)
        start_daemon(a.id, wait=5)
        b.depends_on = [str(a.id)]  # only now: so the first start does not wait for A's beat
        db.session.commit()
        assert {row.worker for row in rows(a, b)} == {worker.hostname()}
        lost = [row.generation for row in rows(a, b)]
        worker.kill()  # kill -9: no stop, the leases just lapse
    # The session's worker consumes the daemons queue again.

    def in_order():
        ra, rb = rows(a, b)
        if rb.generation != lost[1]:  # B's new instance was asked for
            assert ra.generation != lost[0] and heartbeated(ra)

    def restored():
        ra, rb = rows(a, b)
        return all(r.generation != old and heartbeated(r) for r, old in
                   zip((ra, rb), lost, strict=True))  # fmt: skip

    passes_until(restored, timeout=25, check=in_order)
    ra, rb = rows(a, b)
    assert rb.started_at - ra.started_at >= timedelta(seconds=1.8)
    assert any("waiting for fail-a before starting a new instance" in line for line in lines(b))


def test_cluster_start_brings_up_what_an_auto_start_daemon_needs(chain):
    a, b, c = chain
    db.session.get(Daemon, c.id).auto_start = True
    db.session.execute(delete(ClusterState))  # no pass has ever run: a cluster start
    db.session.commit()
    passes_until(lambda: all(heartbeated(row) for row in rows(a, b, c)))
    ra, rb, rc = rows(a, b, c)
    assert ra.started_at < rb.started_at < rc.started_at
    assert "supervisor: cluster start: needed by chain-c sets desired RUNNING" in lines(a)
