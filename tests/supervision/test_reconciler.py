"""The reconciler's decisions, one pass at a time, on real workers, PostgreSQL and Redis."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psutil
import pytest
from sqlalchemy import delete, select, update

from stashhog.events import get_redis, key
from stashhog.extensions import db
from stashhog.models import ClusterState, Daemon, DaemonLog, DaemonRun
from stashhog.services import lease, supervisor
from stashhog.services.daemon_control import start_daemon, stop_daemon
from tests.support.wait import eventually

FAST = {"log_interval": 0.2, "heartbeat_interval": 0.5, "job_interval": 3600}
pytestmark = pytest.mark.usefixtures("daemons_worker")


def row(daemon_id) -> Daemon:
    db.session.expire_all()
    return db.session.get(Daemon, daemon_id)


def set_columns(daemon_id, **values) -> None:
    """Change the row behind the runtime's back, as a fault would."""
    db.session.execute(update(Daemon).where(Daemon.id == daemon_id).values(**values))
    db.session.commit()


def gone(pid: int) -> bool:
    """Ended, even if its parent has not reaped it yet."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def supervisor_lines(daemon_id) -> list[str]:
    db.session.expire_all()
    query = select(DaemonLog.message).where(
        DaemonLog.daemon_id == daemon_id, DaemonLog.message.like("supervisor:%")
    )
    return list(db.session.scalars(query.order_by(DaemonLog.id)))


def run_closed(daemon_id, generation: int) -> bool:
    runs = DaemonRun.__table__
    query = select(runs.c.stopped_at).where(
        runs.c.daemon_id == daemon_id, runs.c.generation == generation
    )
    with db.engine.connect() as conn:
        return conn.execute(query).scalar() is not None


def test_a_running_row_whose_lease_expired_gets_a_new_instance(make_daemon):
    daemon = make_daemon(configuration=FAST)
    first = start_daemon(daemon.id, wait=2)["daemon"]
    # Simulate a vanished instance: its writes are fenced off, so it ends without writing
    # a status (its run record is the last thing it closes); its lease goes with it.
    set_columns(daemon.id, generation=first["generation"] + 1)
    get_redis().delete(lease.lease_key(daemon.id))
    eventually(lambda: run_closed(daemon.id, first["generation"]))
    assert lease.lease_holder(daemon.id) is None and row(daemon.id).status == "RUNNING"
    supervisor.reconcile()
    eventually(lambda: row(daemon.id).status == "RUNNING"
               and lease.lease_holder(daemon.id) == row(daemon.id).generation)  # fmt: skip
    assert row(daemon.id).generation == first["generation"] + 2
    assert any("lease of generation" in line for line in supervisor_lines(daemon.id))
    stop_daemon(daemon.id, wait=3)


def run_a_pass() -> None:
    """One pass that really ran: ``reconcile()`` returns None while another pass (a
    supervisor left by an earlier test of the session) holds the lock."""
    eventually(lambda: supervisor.reconcile() is not None, timeout=5)


def test_a_crashed_daemon_restarts_with_backoff_until_its_budget_is_spent(make_daemon):
    daemon = make_daemon(type="TEST_CRASH", configuration={"crash_after": 0.05}, max_restarts=2)
    start_daemon(daemon.id, wait=2)
    for attempt in (1, 2):
        eventually(lambda: row(daemon.id).status == "ERROR", timeout=5)
        run_a_pass()  # schedules the restart
        scheduled = row(daemon.id).next_restart_at
        delay = (scheduled - datetime.now(UTC)).total_seconds()
        assert 2 ** (attempt - 1) - 0.5 < delay <= 2 ** (attempt - 1)
        eventually(lambda s=scheduled: datetime.now(UTC) >= s, timeout=3)
        run_a_pass()  # restarts it
        eventually(lambda a=attempt: row(daemon.id).restart_count == a, timeout=3)
    eventually(lambda: row(daemon.id).status == "ERROR", timeout=5)
    run_a_pass()
    final = row(daemon.id)
    assert final.status == "ERROR" and final.desired_state == "STOPPED"
    assert "restart budget spent" in final.status_line
    lines = supervisor_lines(daemon.id)
    assert any("restarting in 1s (attempt 1 of 2)" in line for line in lines)
    assert any("restarting in 2s (attempt 2 of 2)" in line for line in lines)
    # An operator's start resets the budget.
    assert start_daemon(daemon.id)["daemon"]["restart_count"] == 0
    stop_daemon(daemon.id, wait=3)


def test_restart_policy_never_leaves_a_crashed_daemon_in_error(make_daemon):
    daemon = make_daemon(type="TEST_CRASH", configuration={"crash_after": 0.05},
                         restart_policy="never")  # fmt: skip
    start_daemon(daemon.id, wait=2)
    eventually(lambda: row(daemon.id).status == "ERROR", timeout=5)
    supervisor.reconcile()
    assert row(daemon.id).desired_state == "STOPPED"
    assert "restart_policy is never" in row(daemon.id).status_line


def test_cluster_start_applies_auto_start(make_daemon):
    auto = make_daemon(configuration=FAST, auto_start=True)
    manual = make_daemon(configuration=FAST)
    db.session.execute(delete(ClusterState))  # no pass has ever run: a cluster start
    db.session.commit()
    report = supervisor.reconcile()
    assert report.booted
    assert row(auto.id).desired_state == "RUNNING"
    assert row(manual.id).desired_state == "STOPPED"
    eventually(lambda: row(auto.id).status == "RUNNING", timeout=5)
    # Later passes are not cluster starts: a stopped auto-start daemon stays stopped.
    stop_daemon(auto.id, wait=3)
    assert supervisor.reconcile().booted is False
    assert row(auto.id).desired_state == "STOPPED"


def test_desired_stopped_with_a_live_instance_is_stopped(make_daemon):
    daemon = make_daemon(configuration=FAST)
    start_daemon(daemon.id, wait=2)
    set_columns(daemon.id, desired_state="STOPPED")  # e.g. a lost stop request
    report = supervisor.reconcile()
    try:
        eventually(lambda: row(daemon.id).status == "STOPPED", timeout=3)
    except AssertionError:
        r = row(daemon.id)
        lines = db.session.scalars(select(DaemonLog.message).where(
            DaemonLog.daemon_id == daemon.id).order_by(DaemonLog.id)).all()  # fmt: skip
        raise AssertionError(
            f"{r.status} {r.status_line} gen {r.generation} lease "
            f"{lease.lease_holder(daemon.id)} {report} {lines}"
        ) from None


def test_a_stop_that_overruns_the_timeout_is_killed_and_fenced(make_daemon, app):
    daemon = make_daemon(type="TEST_STUCK_STOP", configuration={"block_seconds": 60})
    started = start_daemon(daemon.id, wait=2)["daemon"]
    generation, final_pid = started["generation"], started["worker_pid"]
    stop_daemon(daemon.id)
    assert row(daemon.id).status == "STOPPING"
    overdue = datetime.now(UTC) - timedelta(seconds=app.config["STOP_TIMEOUT"] + 3)
    set_columns(daemon.id, updated_at=overdue)  # as if the timeout had passed
    supervisor.reconcile()
    final = row(daemon.id)
    assert final.status == "STOPPED" and final.generation == generation + 1
    assert any("killing it (SIGKILL)" in line for line in supervisor_lines(daemon.id))
    eventually(lambda: gone(final_pid), timeout=5)


def test_concurrent_passes_do_not_overlap(app_ctx):
    redis = get_redis()
    lock = redis.lock(key("supervisor", "lock"), timeout=5)
    assert lock.acquire(blocking=False)
    try:
        assert supervisor.reconcile() is None
    finally:
        lock.release()


def test_a_supervisor_cut_off_mid_pass_holds_the_others_up_for_at_most_the_lock_ttl(app_ctx):
    """A pass holds the lock only while it extends it: one whose supervisor vanished (its
    host cut off) lapses after LOCK_TTL, not 30 s, and the next supervisor's pass runs."""
    stranded = get_redis().lock(key("supervisor", "lock"), timeout=supervisor.LOCK_TTL)
    assert stranded.acquire(blocking=False)
    assert supervisor.reconcile() is None
    eventually(supervisor.reconcile, timeout=supervisor.LOCK_TTL + 1)


def test_a_pass_that_lost_its_lock_stops_acting(make_daemon, monkeypatch):
    """Another supervisor took the lock over (ours lapsed): this pass acts no more."""
    daemon = make_daemon(configuration=FAST)
    set_columns(daemon.id, desired_state="RUNNING", status="STOPPED")
    generation = row(daemon.id).generation
    real = supervisor.all_daemon_rows

    def rows_then_lapse():
        found = real()
        get_redis().delete(key("supervisor", "lock"))  # as when it lapsed
        assert get_redis().set(key("supervisor", "lock"), "another-supervisor", px=2000)
        return found

    monkeypatch.setattr(supervisor, "all_daemon_rows", rows_then_lapse)
    report = supervisor.reconcile()
    assert report.actions == ["pass lock lapsed: stopped acting"]
    assert row(daemon.id).generation == generation  # no start from this pass
    get_redis().delete(key("supervisor", "lock"))


def test_a_redis_restart_is_not_a_cluster_start_and_spares_live_instances(make_daemon):
    auto = make_daemon(configuration=FAST, auto_start=True)
    running = make_daemon(configuration=FAST)
    generation = start_daemon(running.id, wait=2)["daemon"]["generation"]
    supervisor.reconcile()
    get_redis().delete(key("supervisor", "seen"), lease.lease_key(running.id))  # as on restart
    report = supervisor.reconcile()
    assert report.booted is False and row(auto.id).desired_state == "STOPPED"
    assert row(running.id).generation == generation  # no failover for a lost lease key
    eventually(lambda: lease.lease_holder(running.id) == generation, timeout=3)
    stop_daemon(running.id, wait=3)


def test_boot_and_reconcile_commands(app, make_daemon):
    auto = make_daemon(configuration=FAST, auto_start=True, enabled=True)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["daemons", "boot", "--json"])
    assert result.exit_code == 0 and '"auto_started": 1' in result.output
    assert row(auto.id).desired_state == "RUNNING"
    result = runner.invoke(args=["daemons", "reconcile"])
    assert result.exit_code == 0
    assert f"{auto.name}: desired RUNNING but no instance: starting" in result.output
    eventually(lambda: row(auto.id).status == "RUNNING", timeout=5)
    stop_daemon(auto.id, wait=3)
