"""Faults injected into a running cluster, and the guarantees that must survive them:
never two instances of a daemon at once, no lost or duplicated log line, recovery within
seconds, the final state equal to the last command, and no zombie after a stop.

``make test`` runs one trial per fault; ``make chaos`` (STASHHOG_CHAOS=full) runs more and
prints the table of recovery times.
"""

from __future__ import annotations

import random
import signal
import statistics
import threading
import time
from datetime import UTC, datetime

import psycopg2
import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from stashhog.extensions import db
from stashhog.models import DaemonLog
from stashhog.services import lease
from stashhog.services.daemon_control import restart_daemon, start_daemon, stop_daemon
from tests.chaos import invariants
from tests.chaos.conftest import FULL
from tests.support.tickers import fresh, start_tickers

pytestmark = pytest.mark.chaos
TRIALS = 10 if FULL else 1
RECOVERY: dict[str, list[float]] = {}
FAILOVER_TARGET = 5.0


@pytest.fixture(scope="module")
def tickers(chaos_app):
    return start_tickers(2, wait=5)


def wait_recovered(daemon_id, since: datetime, began: float, avoid: str | None = None,
                   timeout: float = 20.0) -> float:  # fmt: skip
    """Seconds from ``began`` until a live instance (not on ``avoid``) heartbeats again."""
    while time.monotonic() - began < timeout:
        row = fresh(daemon_id)
        live = lease.lease_holder(daemon_id) == row.generation
        if (row.status == "RUNNING" and live and row.worker != avoid
                and row.last_heartbeat and row.last_heartbeat > since):  # fmt: skip
            return time.monotonic() - began
        time.sleep(0.02)
    pytest.fail(f"daemon {daemon_id} did not recover within {timeout}s: {fresh(daemon_id)}")


def holder_worker(cluster, daemon_id):
    worker = cluster.worker_named(fresh(daemon_id).worker)
    assert worker is not None, "the daemon runs on no known worker"
    return worker


def recover_all(tickers, since, began, avoid=None) -> list[float]:
    return [wait_recovered(daemon_id, since, began, avoid) for daemon_id in tickers]


def test_kill_9_of_a_worker_fails_over_within_five_seconds(cluster, chaos_app, tickers):
    times = []
    for _ in range(TRIALS):
        victim = holder_worker(cluster, tickers[0])
        since, began = datetime.now(UTC), time.monotonic()
        cluster.signal_tree(victim, signal.SIGKILL)
        times.append(max(recover_all(tickers, since, began, avoid=victim.hostname())))
        victim.proc.wait(5)
        cluster.daemon_workers.remove(victim)
        victim.log.close()
        cluster.add_daemons_worker(chaos_app.extensions["celery"])
    RECOVERY["kill -9 worker"] = times
    assert max(times) < FAILOVER_TARGET, times


def test_a_paused_worker_finds_itself_fenced_and_writes_nothing(cluster, chaos_app, tickers):
    times = []
    for _ in range(TRIALS):
        victim = holder_worker(cluster, tickers[0])
        old = fresh(tickers[0]).generation
        since, began = datetime.now(UTC), time.monotonic()
        cluster.signal_tree(victim, signal.SIGSTOP)
        times.append(wait_recovered(tickers[0], since, began, avoid=victim.hostname()))
        time.sleep(max(0.0, chaos_app.config["LEASE_TTL"] + 1 - (time.monotonic() - began)))
        successor_first = successors_first_line(tickers[0], old)
        cluster.signal_tree(victim, signal.SIGCONT)
        time.sleep(2.0)  # the resumed instance notices it was superseded and exits
        late = db.session.scalars(
            select(DaemonLog.id).where(
                DaemonLog.daemon_id == tickers[0], DaemonLog.generation == old,
                DaemonLog.id > successor_first,
            )
        ).all()  # fmt: skip
        assert late == [], f"generation {old} wrote after line {successor_first} of a successor"
        assert fresh(tickers[0]).worker != victim.hostname()
    RECOVERY["SIGSTOP worker > lease"] = times


def successors_first_line(daemon_id, old: int) -> int:
    """The id of the first line any newer generation wrote (waiting for one to appear)."""
    query = (
        select(DaemonLog.id)
        .where(DaemonLog.daemon_id == daemon_id, DaemonLog.generation > old)
        .order_by(DaemonLog.id)
        .limit(1)
    )
    deadline = time.monotonic() + 5
    while (first := db.session.scalar(query)) is None:
        assert time.monotonic() < deadline, "no successor wrote a line"
        time.sleep(0.05)
    return first


def test_sigterm_deploy_moves_daemons_to_another_worker(cluster, chaos_app, tickers):
    times = []
    for _ in range(TRIALS):
        victim = holder_worker(cluster, tickers[0])
        since, began = datetime.now(UTC), time.monotonic()
        victim.proc.send_signal(signal.SIGTERM)
        victim.proc.wait(10)
        assert time.monotonic() - began < 5, "warm shutdown took too long"
        times.append(max(recover_all(tickers, since, began, avoid=victim.hostname())))
        cluster.daemon_workers.remove(victim)
        victim.log.close()
        cluster.add_daemons_worker(chaos_app.extensions["celery"])
    RECOVERY["SIGTERM worker (deploy)"] = times


def test_redis_restart_is_survived(cluster, chaos_app, tickers):
    times = []
    for _ in range(TRIALS):
        since, began = datetime.now(UTC), time.monotonic()
        cluster.redis.restart()
        times.append(max(recover_all(tickers, since, began)))
    RECOVERY["Redis restart"] = times


def test_killed_database_connections_are_survived(cluster, chaos_app, tickers):
    target = make_url(cluster.database_url)
    times = []
    for _ in range(TRIALS):
        db.session.remove()  # the workers' connections are the target, not ours
        since, began = datetime.now(UTC), time.monotonic()
        conn = psycopg2.connect(host=target.host, port=target.port or 5432,
                                user=target.username, dbname="postgres")  # fmt: skip
        conn.autocommit = True
        conn.cursor().execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (target.database,),
        )
        conn.close()
        times.append(max(recover_all(tickers, since, began)))
    RECOVERY["pg_terminate_backend"] = times


def test_a_storm_of_commands_ends_in_the_last_commanded_state(chaos_app, tickers):
    commands = {"start": start_daemon, "stop": stop_daemon, "restart": restart_daemon}
    rng = random.Random(7)
    errors: list[BaseException] = []

    def storm(seed: int) -> None:
        local = random.Random(seed)
        with chaos_app.app_context():
            for _ in range(8 if FULL else 4):
                try:
                    commands[local.choice(list(commands))](local.choice(tickers))
                except BaseException as exc:  # noqa: BLE001  (collected and asserted below)
                    errors.append(exc)
            db.session.remove()

    threads = [threading.Thread(target=storm, args=(rng.random(),)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not [e for e in errors if type(e).__name__ != "Conflict"], errors
    since, began = datetime.now(UTC), time.monotonic()
    stop_daemon(tickers[1])
    start_daemon(tickers[0])
    RECOVERY["command storm (settle)"] = [wait_recovered(tickers[0], since, began)]
    wait_status(tickers[1], "STOPPED")
    start_daemon(tickers[1], wait=5)


def wait_status(daemon_id, status: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while fresh(daemon_id).status != status:
        assert time.monotonic() < deadline, f"{daemon_id} never reached {status}"
        time.sleep(0.05)


def test_invariants_hold_and_nothing_runs_after_stop(chaos_app, tickers):
    for daemon_id in tickers:
        stop_daemon(daemon_id, wait=5)
        wait_status(daemon_id, "STOPPED")
    time.sleep(0.5)
    db.session.expire_all()
    before = {d: (fresh(d).last_heartbeat, max_log_id(d)) for d in tickers}
    time.sleep(2.0)
    report_table()
    for daemon_id in tickers:
        assert invariants.overlaps(daemon_id) == [], "two instances ran at once"
        assert invariants.sequence_faults(daemon_id) == []
        assert fresh(daemon_id).generation in invariants.cleanly_stopped(daemon_id)
        assert (fresh(daemon_id).last_heartbeat, max_log_id(daemon_id)) == before[daemon_id]
        assert lease.lease_holder(daemon_id) is None, "a zombie holds the lease"


def max_log_id(daemon_id) -> int:
    query = select(DaemonLog.id).where(DaemonLog.daemon_id == daemon_id)
    return db.session.scalar(query.order_by(DaemonLog.id.desc()).limit(1)) or 0


def report_table() -> None:
    print(f"\n{'fault':<28}{'trials':>7}{'p50 s':>8}{'p99 s':>8}{'max s':>8}")
    for fault, times in RECOVERY.items():
        ordered = sorted(times)
        p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
        print(f"{fault:<28}{len(times):>7}{statistics.median(times):>8.2f}{p99:>8.2f}"
              f"{max(times):>8.2f}")  # fmt: skip
