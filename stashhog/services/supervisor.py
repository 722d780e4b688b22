"""The reconciler: drives every daemon's actual state towards its desired state.

Beat runs ``reconcile()`` every RECONCILE_INTERVAL seconds on the ``supervisor`` queue. A pass
is idempotent and safe beside another pass: each action is a conditional write (generation
fencing, as in the service) and a Redis lock keeps passes from overlapping needlessly. Every
decision is written to the daemon's log, so an operator can read why it acted.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import current_app
from redis.exceptions import LockError, RedisError
from sqlalchemy import insert, select, update
from sqlalchemy.engine import Row

from stashhog.control import send_kill
from stashhog.errors import StashHogError
from stashhog.events import get_redis, key
from stashhog.extensions import db
from stashhog.models import (
    ClusterState,
    Daemon,
    DaemonStatus,
    DesiredState,
    LogLevel,
    RestartPolicy,
)
from stashhog.models.enums import LIVE_STATES, RUNNING_STATES, RunOutcome
from stashhog.observability import alerts, runs
from stashhog.services import daemon_capacity, daemon_control, daemon_limits
from stashhog.services import daemon_dependencies as dependencies
from stashhog.services.clock import read_now
from stashhog.services.daemon_logs import write_supervisor_log
from stashhog.services.daemon_queries import all_daemon_rows, find_daemon_row
from stashhog.services.daemon_state import change_daemon
from stashhog.services.health import worker_inspection
from stashhog.services.lease import lease_holders, lease_remaining

daemons = Daemon.__table__
cluster = ClusterState.__table__
BACKOFF_BASE = 1.0
BACKOFF_CAP = 300.0
# A queued start that no worker took within this long is reported and dispatched again
# (a Redis restart loses queued messages; stale copies exit at once by generation).
DISPATCH_TIMEOUT = timedelta(seconds=10)
# A start pending this long makes the pass want the daemons workers' capacity (one
# inspection after the pass, outside its lock), so it is known by DISPATCH_TIMEOUT.
CAPACITY_WANTED = DISPATCH_TIMEOUT / 2
# Without a pass for this long, the cluster counts as (re)started: auto_start applies.
CLUSTER_IDLE = timedelta(seconds=30)
# The pass lock lapses this long after it was last extended (before each daemon): a
# supervisor cut off mid-pass holds up the others for at most this, and a pass that lost
# its lock stops acting, since another supervisor may be acting on the same rows.
LOCK_TTL = 2.0
LOCK_EXTEND_EVERY = LOCK_TTL / 8


@dataclass
class PassReport:
    actions: list[str] = field(default_factory=list)
    booted: bool = False
    starts: daemon_capacity.StartCheck = field(default_factory=daemon_capacity.StartCheck)
    samples: dict = field(default_factory=dict)  # daemon_limits.latest_samples of the pass

    def note(self, row: Row, level: str, message: str) -> None:
        self.actions.append(f"{row.name}: {message}")
        write_supervisor_log(row.id, level, f"supervisor: {message}")


def reconcile() -> PassReport | None:
    """One supervision pass; None when another pass holds the lock."""
    redis = get_redis()
    lock = redis.lock(key("supervisor", "lock"), timeout=LOCK_TTL, blocking=False)
    if not lock.acquire():
        return None
    try:
        report = _pass(redis, lock)
    except LockError:
        current_app.logger.warning("supervisor pass lock lapsed; the pass stopped acting")
        return PassReport(actions=["pass lock lapsed: stopped acting"])
    finally:
        with contextlib.suppress(LockError, RedisError):
            lock.release()
    if report.starts.wants_inspection:
        with contextlib.suppress(Exception):  # unanswered: overdue starts are re-dispatched
            worker_inspection().workers_by_queue()  # cached: a broadcast at most every 2 s
    return report


def _pass(redis, lock) -> PassReport:
    """The pass itself, under ``lock`` (extended before each daemon's action)."""
    report = PassReport()
    cluster_start, redis_restarted = _mark_pass()
    if cluster_start:
        report.booted = bool(boot(report))
    elif redis_restarted:
        # Leases died with Redis; live instances re-take theirs within a second.
        ttl = current_app.config["LEASE_TTL"]
        redis.set(key("supervisor", "grace"), 1, px=int((ttl + 1) * 1000))
    in_grace = bool(redis.exists(key("supervisor", "grace")))
    rows = all_daemon_rows()
    holders = lease_holders([row.id for row in rows])
    now = read_now()  # rows' updated_at is the database's time: compare on that clock
    graph = dependencies.Graph(rows)
    left = lease_remaining(graph.needed())
    report.starts = daemon_capacity.check_starts(
        rows, holders, lambda row: now - row.updated_at > CAPACITY_WANTED,
        worker_inspection().last_answer,
    )  # fmt: skip
    report.samples = daemon_limits.latest_samples(daemon_limits.enforced(rows))
    extended = -LOCK_TTL
    for row in rows:
        # Extended at most every LOCK_EXTEND_EVERY (a round trip a daemon was half of a pass
        # at 1,000 daemons): the lock cannot lapse in between, and an action that took longer
        # is followed by a check. LockNotOwnedError: another supervisor may act now.
        if time.monotonic() - extended >= LOCK_EXTEND_EVERY:
            lock.reacquire()
            extended = time.monotonic()
        waiting = dependencies.waiting_in(graph, holders, row, now, left)
        try:
            reconcile_daemon(row, holders[str(row.id)], now, report, in_grace, waiting)
        except StashHogError as exc:
            report.note(row, LogLevel.WARNING, f"could not act: {exc.message}")
    lock.reacquire()
    report.actions += observe(rows, now)
    return report


def observe(rows: list[Row], now: datetime) -> list[str]:
    """Alert evaluation and the hand-off of notifications; a failure here is logged and
    never stops supervision."""
    try:
        changes = alerts.evaluate(rows, now)
        alerts.dispatch_notifications(now)
    except Exception:
        current_app.logger.exception("alert evaluation failed")
        return []
    return changes


def _mark_pass() -> tuple[bool, bool]:
    """Record this pass; tell a cluster start (no pass for CLUSTER_IDLE, kept in the database)
    from a Redis restart (the Redis marker alone is gone)."""
    with db.engine.begin() as conn:
        now = read_now(conn)  # every supervisor host compares on the database's clock
        query = select(cluster.c.updated_at).where(cluster.c.name == "supervisor")
        previous = conn.execute(query.with_for_update()).scalar()
        if previous is None:
            conn.execute(insert(cluster).values(name="supervisor", updated_at=now))
        else:
            conn.execute(
                update(cluster).where(cluster.c.name == "supervisor").values(updated_at=now)
            )
    cluster_start = previous is None or now - previous > CLUSTER_IDLE
    redis_marker = get_redis().set(key("supervisor", "seen"), 1, get=True)
    return cluster_start, redis_marker is None and not cluster_start


def boot(report: PassReport | None = None) -> int:
    """Cluster start: enabled auto-start daemons, and what they depend on, get desired
    state RUNNING (the passes then start each once what it needs is ready)."""
    graph = dependencies.load_graph()
    rows = [row for row in graph.rows.values() if row.enabled and row.auto_start]
    needed_by = {dep.id: row for row in rows for dep in graph.dependencies(row.id)}
    for row in graph.start_order({*needed_by, *(row.id for row in rows)}):
        if row.desired_state != DesiredState.RUNNING and row.enabled:
            change_daemon(row.id, desired_state=DesiredState.RUNNING)
            why = "auto_start" if row.auto_start else f"needed by {needed_by[row.id].name}"
            if report:
                report.note(row, LogLevel.INFO, f"cluster start: {why} sets desired RUNNING")
    return len(rows)


def reconcile_daemon(
    row: Row,
    holder: int | None,
    now: datetime,
    report: PassReport,
    in_grace: bool = False,
    waiting: Sequence[str] = (),
) -> None:
    """``waiting``: the names of what the daemon depends on that is not ready."""
    alive = holder is not None
    if row.desired_state == DesiredState.RUNNING:
        if in_grace and not alive and row.status == DaemonStatus.RUNNING:
            return  # its lease may come back: see reconcile()
        if daemon_limits.enforce(row, alive, now, report.note, report.samples.get(row.id)):
            return  # a resource limit its runtime did not enforce: killed
        _towards_running(row, alive, now, report, waiting)
    else:
        _towards_stopped(row, alive, now, report)


def _towards_running(
    row: Row, alive: bool, now: datetime, report: PassReport, waiting: Sequence[str] = ()
) -> None:
    if not row.enabled:
        report.note(row, LogLevel.WARNING, "disabled while desired RUNNING: stopping it")
        daemon_control.stop_only(row.id)
    elif waiting and not alive and row.status != DaemonStatus.STARTING:
        hold(row, waiting, report)
    elif row.status == DaemonStatus.RUNNING and not alive:
        report.note(row, LogLevel.WARNING, f"lease of generation {row.generation} expired "
                    f"(worker {row.worker or '?'} gone): starting a new instance")  # fmt: skip
        runs.close_run(row.id, row.generation, RunOutcome.WORKER_LOST)
        daemon_control.start_daemon(row.id, operator=False)
    elif row.status == DaemonStatus.STARTING and not alive:
        overdue = now - row.updated_at > DISPATCH_TIMEOUT
        if reason := report.starts.reason(row, overdue):
            if daemon_capacity.fail_start(row, reason):
                report.note(row, LogLevel.ERROR, f"{reason} (its queued task is withdrawn)")
        elif overdue and not report.starts.still_queued():
            report.note(row, LogLevel.WARNING, "no worker on the daemons queue took the start "
                        f"within {DISPATCH_TIMEOUT.seconds}s: dispatching again")  # fmt: skip
            again = daemon_control.start_daemon(row.id, operator=False)["daemon"]
            if again["generation"] != row.generation:
                daemon_capacity.note_redispatch(row.id, row.generation, again["generation"])
    elif row.status == DaemonStatus.ERROR and not alive:
        _restart_crashed(row, now, report)
    elif row.status == DaemonStatus.STOPPING and alive and now - row.updated_at > _stop_deadline():
        kill(row, report)  # a stop (a limit's restart, or a start waiting on it) that overran
    elif row.status not in RUNNING_STATES and not alive:  # STOPPED, or STOPPING and gone
        ready = " (what it depends on is ready)" if row.depends_on else ""
        report.note(row, LogLevel.INFO, f"desired RUNNING but no instance: starting{ready}")
        daemon_control.start_daemon(row.id, operator=False)
    elif row.status == DaemonStatus.RUNNING and row.restart_count and _healthy_for_window(row, now):
        change_daemon(row.id, if_generation=row.generation, restart_count=0)


def hold(row: Row, waiting: Sequence[str], report: PassReport) -> None:
    """No instance while what it needs is not ready (a dependency in ERROR holds it here,
    rather than crash-looping it): the status line says what it waits for."""
    line = dependencies.waiting_line(waiting)
    if row.status in LIVE_STATES:  # its instance is gone (a lost worker)
        runs.close_run(row.id, row.generation, RunOutcome.WORKER_LOST)
        if daemon_control.finalize_stopped(row, reason=line):
            report.note(row, LogLevel.WARNING, f"lease of generation {row.generation} expired "
                        f"(worker {row.worker or '?'} gone); {line} before starting a new "
                        "instance")  # fmt: skip
    elif row.status_line != line:
        held = change_daemon(row.id, if_generation=row.generation,
                             only_if={"status": row.status}, status_line=line)  # fmt: skip
        if held:
            report.note(row, LogLevel.INFO, f"{line}: not starting it until ready")


def _restart_crashed(row: Row, now: datetime, report: PassReport) -> None:
    if row.restart_policy == RestartPolicy.NEVER:
        give_up(row, "crashed; restart_policy is never", report)
    elif row.restart_count >= row.max_restarts:
        give_up(row, f"crashed {row.restart_count + 1} times within {row.restart_window}s; "
                "restart budget spent", report)  # fmt: skip
    elif row.next_restart_at is None:
        delay = min(BACKOFF_BASE * 2**row.restart_count, BACKOFF_CAP)
        scheduled = change_daemon(row.id, if_generation=row.generation,
                                  next_restart_at=now + timedelta(seconds=delay))  # fmt: skip
        if scheduled:
            report.note(row, LogLevel.WARNING, f"crashed; restarting in {delay:g}s "
                        f"(attempt {row.restart_count + 1} of {row.max_restarts})")  # fmt: skip
    elif now >= row.next_restart_at:
        report.note(row, LogLevel.INFO, f"restarting after crash (attempt {row.restart_count + 1})")
        daemon_control.start_daemon(row.id, operator=False, restart_count=row.restart_count + 1)


def give_up(row: Row, reason: str, report: PassReport) -> None:
    changed = change_daemon(row.id, if_generation=row.generation,
                            desired_state=DesiredState.STOPPED, status_line=reason)  # fmt: skip
    if changed:
        report.note(row, LogLevel.ERROR, f"{reason}: staying ERROR until an operator starts it")


def _healthy_for_window(row: Row, now: datetime) -> bool:
    return row.started_at is not None and now - row.started_at > timedelta(
        seconds=row.restart_window
    )


def _towards_stopped(row: Row, alive: bool, now: datetime, report: PassReport) -> None:
    if row.status in RUNNING_STATES and alive:
        report.note(row, LogLevel.WARNING, "desired STOPPED but an instance runs: stopping it")
        daemon_control.stop_only(row.id)
    elif row.status in LIVE_STATES:
        if not alive:
            report.note(row, LogLevel.INFO, "instance gone: marking STOPPED")
            runs.close_run(row.id, row.generation, RunOutcome.WORKER_LOST)
            daemon_control.finalize_stopped(row)
        elif now - row.updated_at > _stop_deadline():
            kill(row, report)


def _stop_deadline() -> timedelta:
    return timedelta(seconds=current_app.config["STOP_TIMEOUT"] + 2)


def kill(row: Row, report: PassReport) -> None:
    """Escalate a stop that overran STOP_TIMEOUT: SIGKILL, and fence the old generation."""
    timeout = current_app.config["STOP_TIMEOUT"]
    report.note(row, LogLevel.ERROR, f"did not stop within {timeout:g}s: killing it (SIGKILL)")
    if row.worker and row.worker_pid:
        send_kill(row.worker, row.worker_pid)
    runs.close_run(row.id, row.generation, RunOutcome.KILLED, error=f"killed after {timeout:g}s")
    fenced = change_daemon(row.id, if_generation=row.generation, generation=row.generation + 1)
    if fenced:
        daemon_control.finalize_stopped(find_daemon_row(row.id))
