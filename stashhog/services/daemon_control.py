"""Start, stop and restart daemons, one or all: the operator's commands, safe to call
concurrently.

Starting takes a new ``generation`` (fencing any earlier instance) and queues one task on the
``daemons`` queue. Stopping sets the desired state, then sends the stop (``stashhog.control``:
a message on the daemon's control channel, heard by any pool in milliseconds, and a revoke
with SIGTERM).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from flask import current_app
from sqlalchemy.engine import Row

from stashhog.celery_app import send_task
from stashhog.control import send_stop
from stashhog.daemons import get_daemon_class
from stashhog.daemons.config import validate_configuration
from stashhog.errors import ConfigurationError, Conflict, Invalid, StashHogError, Unavailable
from stashhog.models import DaemonStatus, DesiredState
from stashhog.models.enums import RUNNING_STATES, START_SETTLED_STATES, STOPPED_STATES
from stashhog.services.clock import read_now
from stashhog.services.daemon_audit import audited, audited_bulk
from stashhog.services.daemon_health import STARTING_GRACE
from stashhog.services.daemon_queries import all_daemon_rows, find_daemon_row, get_daemon
from stashhog.services.daemon_state import change_daemon
from stashhog.services.lease import lease_holder


@audited("start")
def start_daemon(
    ref: uuid.UUID | str,
    *,
    wait: float = 0.0,
    operator: bool = True,
    restart_count: int | None = None,
) -> dict:
    """Ask for the daemon to run. Idempotent: an already running daemon is left alone.

    An operator's start resets the crash budget; the supervisor's passes ``operator=False``
    and, for a crash restart, the new ``restart_count``. Returns the daemon (as the API
    shows it) plus ``changed`` and ``message``."""
    deadline = time.monotonic() + wait
    for _attempt in range(5):
        row = find_daemon_row(ref)
        _check_startable(row)
        if _already_running(row):
            if wait and row.status == DaemonStatus.STARTING:
                wait_for_status(row.id, START_SETTLED_STATES, wait)
            return _result(row.id, False, "daemon is already running")
        if row.status == DaemonStatus.STOPPING and lease_holder(row.id) is not None:
            if _start_after_stop(row, deadline):
                return _result(row.id, True, "starts once the previous instance has stopped")
            continue
        # Read Redis before writing anything: without it the start is refused (503) with the
        # row as it was, rather than a generation taken and then handed back.
        lease_holder(row.id)
        data = _take_generation(row, operator, restart_count)
        if data is not None:
            break  # else another start or stop raced us: read again
    else:
        raise Conflict("daemon is changing concurrently; try again")
    _dispatch_or_revert(row, data)
    if wait:
        wait_for_status(row.id, START_SETTLED_STATES, max(deadline - time.monotonic(), 0.0))
    return _result(row.id, True, "daemon started")


def _take_generation(row: Row, operator: bool, restart_count: int | None) -> dict | None:
    """STARTING with a new generation and task id, if nobody changed the row meanwhile."""
    values: dict[str, Any] = {
        "desired_state": DesiredState.RUNNING,
        "status": DaemonStatus.STARTING,
        "generation": row.generation + 1,
        "task_id": str(uuid.uuid4()),
        "last_error": None,
        "status_line": None,
    }
    if operator or restart_count is not None:
        values.update(restart_count=restart_count or 0, next_restart_at=None)
    return change_daemon(row.id, if_generation=row.generation, **values)


def _start_after_stop(row: Row, deadline: float) -> bool:
    """The old instance keeps its generation until it has stopped, so its on_stop() and last
    lines are written. Wait for that until ``deadline`` (False: go on and start), or leave
    desired RUNNING for the supervisor to act on once it has stopped (True)."""
    change_daemon(row.id, if_generation=row.generation, desired_state=DesiredState.RUNNING)
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        return True
    wait_for_status(row.id, STOPPED_STATES, remaining)
    return False


def _dispatch_or_revert(row: Row, data: dict) -> None:
    """Queue the task; if the broker refuses, put the row back as it was."""
    try:
        dispatch(row.id, data["generation"], data["task_id"])
    except Exception as exc:
        change_daemon(row.id, if_generation=data["generation"], status=row.status,
                      desired_state=row.desired_state)  # fmt: skip
        raise Unavailable(f"could not queue the daemon task: {exc}") from exc


def dispatch(daemon_id: uuid.UUID, generation: int, task_id: str) -> None:
    send_task("stashhog.run_daemon", str(daemon_id), generation, task_id=task_id)


def _check_startable(row: Row) -> None:
    if not row.enabled:
        raise Conflict(f"daemon {row.name!r} is disabled; enable it before starting")
    try:
        validate_configuration(get_daemon_class(row.type).Config, row.configuration)
    except ConfigurationError as exc:
        raise Invalid(f"stored configuration is invalid: {exc}", key=exc.key) from None


def _already_running(row: Row) -> bool:
    if row.desired_state != DesiredState.RUNNING or row.status not in RUNNING_STATES:
        return False
    if lease_holder(row.id) == row.generation:
        return True
    fresh = read_now() - row.updated_at < STARTING_GRACE  # updated_at is the database's time
    return row.status == DaemonStatus.STARTING and fresh


@audited("stop")
def stop_daemon(ref: uuid.UUID | str, *, wait: float = 0.0) -> dict:
    """Ask for the daemon to stop. Idempotent: a stopped daemon is left alone."""
    for _attempt in range(5):
        row = find_daemon_row(ref)
        if row.desired_state == DesiredState.STOPPED and row.status not in RUNNING_STATES:
            if wait and row.status == DaemonStatus.STOPPING:
                wait_for_status(row.id, STOPPED_STATES, wait)
            return _result(row.id, False, "daemon is already stopped")
        if _stop_once(row) is not None:
            break  # else the instance or another command changed the row: read again
    else:
        raise Conflict("daemon is changing concurrently; try again")
    if wait:
        wait_for_status(row.id, STOPPED_STATES, wait)
    result = _result(row.id, True, "daemon stopped")
    if result["daemon"]["status"] == DaemonStatus.STOPPING:
        result["message"] = "stopping"
    return result


def _stop_once(row: Row) -> dict | None:
    """One attempt, conditional on the row still being as read (None: it changed)."""
    guard: dict[str, Any] = {"if_generation": row.generation, "only_if": {"status": row.status}}
    # Only this generation's own lease counts: an older instance that is still releasing
    # its lease is fenced already, and our task, if queued, exits when it finds STOPPED.
    alive = lease_holder(row.id) == row.generation
    if row.status in RUNNING_STATES and alive:
        data = change_daemon(row.id, **guard, desired_state=DesiredState.STOPPED,
                             status=DaemonStatus.STOPPING)  # fmt: skip
    elif row.status == DaemonStatus.STOPPING and alive:
        data = change_daemon(row.id, **guard, desired_state=DesiredState.STOPPED)
    else:
        # No live instance (never started, queued, or its worker died): nothing to signal.
        # A queued task finds desired_state STOPPED when it starts and exits at once.
        return finalize_stopped(row, desired=DesiredState.STOPPED)
    if data is not None:
        send_stop(row.id, row.generation, row.task_id)
    return data


def finalize_stopped(
    row: Row, *, desired: str | None = None, reason: str | None = None
) -> dict | None:
    """Mark a daemon with no live instance STOPPED (ERROR stays ERROR), if the row is still
    as read; None when it changed meanwhile."""
    values: dict[str, Any] = {"stopped_at": datetime.now(UTC), "worker_pid": None}
    if row.status != DaemonStatus.ERROR:
        values["status"] = DaemonStatus.STOPPED
    if desired:
        values["desired_state"] = desired
    if reason:
        values["status_line"] = reason
    return change_daemon(row.id, if_generation=row.generation, only_if={"status": row.status},
                         **values)  # fmt: skip


@audited("restart")
def restart_daemon(ref: uuid.UUID | str, *, wait: float = 0.0) -> dict:
    """Stop (waiting up to the stop timeout), then start with the stored configuration."""
    stop_daemon(ref, wait=current_app.config["STOP_TIMEOUT"] + 1)
    result = start_daemon(ref, wait=wait)
    return {**result, "changed": True, "message": "daemon restarted"}


def wait_for_status(daemon_id: uuid.UUID, statuses: frozenset, timeout: float) -> Row:
    """Poll the row until its status is one of ``statuses`` or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        row = find_daemon_row(daemon_id)
        if row.status in statuses or time.monotonic() >= deadline:
            return row
        time.sleep(0.003)


def _result(daemon_id: uuid.UUID, changed: bool, message: str) -> dict:
    """A command's reply: the daemon as the API shows it now, ``changed`` and ``message``."""
    return {"daemon": get_daemon(daemon_id), "changed": changed, "message": message}


# -- bulk actions --------------------------------------------------------------------------


@audited_bulk("start_all")
def start_all() -> dict[str, Any]:
    """Start every enabled daemon (disabled ones are counted in ``skipped``)."""
    rows = all_daemon_rows()
    result = _each([row for row in rows if row.enabled], start_daemon)
    result["skipped"] = sum(1 for row in rows if not row.enabled)
    return result


@audited_bulk("stop_all")
def stop_all() -> dict[str, Any]:
    """Stop every daemon; already stopped ones count as requested but not changed."""
    return _each(all_daemon_rows(), stop_daemon)


@audited_bulk("restart_all")
def restart_all() -> dict[str, Any]:
    """Restart every enabled daemon that should be running: stop them all, wait (up to the
    stop timeout, once for all), then start them all."""
    targets = [
        r for r in all_daemon_rows() if r.enabled and r.desired_state == DesiredState.RUNNING
    ]
    stopping = _each(targets, stop_daemon)
    failed = {error["daemon_id"] for error in stopping["errors"]}
    deadline = time.monotonic() + current_app.config["STOP_TIMEOUT"] + 1
    stopped = [row for row in targets if str(row.id) not in failed]
    for row in stopped:
        remaining = max(deadline - time.monotonic(), 0.0)
        wait_for_status(row.id, STOPPED_STATES, remaining)
    starting = _each(stopped, lambda ref: start_daemon(ref, operator=True))
    return {
        "requested": len(targets),
        "changed": starting["changed"],
        "errors": stopping["errors"] + starting["errors"],
        "skipped": 0,
    }


def _each(rows: list[Any], action: Callable[[uuid.UUID], dict]) -> dict[str, Any]:
    changed, errors = 0, []
    for row in rows:
        try:
            changed += bool(action(row.id)["changed"])
        except StashHogError as exc:
            errors.append({"daemon_id": str(row.id), "name": row.name, "error": exc.message})
    return {"requested": len(rows), "changed": changed, "errors": errors, "skipped": 0}
