"""Start, stop and restart daemons, one or all: the operator's commands, safe to call
concurrently.

Starting takes a new ``generation`` (fencing any earlier instance) and queues one task on the
``daemons`` queue; what a daemon depends on starts first, and it starts once that is ready
(``daemon_dependencies``). Stopping is ``daemon_stop``'s (dependents first), re-exported here.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import redis
from flask import current_app
from sqlalchemy.engine import Row

from stashhog.celery_app import send_task
from stashhog.daemons import get_daemon_class
from stashhog.daemons.config import validate_configuration
from stashhog.errors import ConfigurationError, Conflict, Invalid, StashHogError, Unavailable
from stashhog.models import DaemonStatus, DesiredState
from stashhog.models.enums import RUNNING_STATES, START_SETTLED_STATES, STOPPED_STATES
from stashhog.services import daemon_dependencies as dependencies
from stashhog.services.clock import read_now
from stashhog.services.daemon_audit import audited, audited_bulk, note_in_daemon_log
from stashhog.services.daemon_health import STARTING_GRACE
from stashhog.services.daemon_queries import all_daemon_rows, find_daemon_row
from stashhog.services.daemon_state import change_daemon
from stashhog.services.daemon_stop import command_result
from stashhog.services.daemon_stop import finalize_stopped as finalize_stopped  # re-exported
from stashhog.services.daemon_stop import stop_daemon as stop_daemon
from stashhog.services.daemon_stop import stop_only as stop_only
from stashhog.services.daemon_stop import wait_for_status as wait_for_status
from stashhog.services.lease import lease_holder, lease_holders


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
    and, for a crash restart, the new ``restart_count``. An operator's start first starts
    what the daemon depends on, in order (``dependencies_started``). It starts once they are
    ready; with ``wait`` this call waits for each in turn, else (or when ``wait`` runs out)
    the daemon is left desired RUNNING, "waiting for …", for the supervisor to start once
    they are. Returns the daemon (as the API shows it) plus ``changed`` and ``message``."""
    deadline = time.monotonic() + wait
    row = find_daemon_row(ref)
    started = _bring_up_dependencies(row, deadline) if operator and row.depends_on else []
    result = _start(row.id, deadline, operator, restart_count)
    return {**result, "dependencies_started": started}


def _start(
    daemon_id: uuid.UUID, deadline: float, operator: bool, restart_count: int | None
) -> dict:
    wait = deadline - time.monotonic() > 0
    # Read Redis before writing anything: without it the start is refused (503) with the row
    # as it was, rather than a generation taken and then handed back (issue 15, fault 5).
    try:
        lease_holder(daemon_id)
    except redis.RedisError as exc:
        raise Unavailable(f"Redis is unreachable, so the daemon was not started: {exc}") from exc
    for _attempt in range(5):
        row = find_daemon_row(daemon_id)
        _check_startable(row)
        if _already_running(row):
            if wait and row.status == DaemonStatus.STARTING:
                wait_for_status(row.id, START_SETTLED_STATES, deadline - time.monotonic())
            return command_result(row.id, False, "daemon is already running")
        if row.status == DaemonStatus.STOPPING and lease_holder(row.id) is not None:
            if _start_after_stop(row, deadline):
                return command_result(row.id, True, "starts once the previous instance has stopped")
            continue
        if row.depends_on and (waiting := dependencies.unready(row)):
            if _defer(row, waiting, operator, restart_count):
                return command_result(row.id, True, f"starts once {', '.join(waiting)} "
                               f"{'is' if len(waiting) == 1 else 'are'} ready")  # fmt: skip
            continue
        data = _take_generation(row, operator, restart_count)
        if data is not None:
            break  # else another start or stop raced us: read again
    else:
        raise Conflict("daemon is changing concurrently; try again")
    _dispatch_or_revert(row, data)
    if wait:
        wait_for_status(row.id, START_SETTLED_STATES, max(deadline - time.monotonic(), 0.0))
    return command_result(row.id, True, "daemon started")


def _bring_up_dependencies(row: Row, deadline: float) -> list[str]:
    """Start what ``row`` needs that is not up, in start order, each after what it needs
    (waiting for each to be ready while ``deadline`` allows); returns the names started.
    A dependency that cannot start (disabled, invalid) refuses the whole start at once."""
    graph = dependencies.load_graph()
    needed = graph.dependencies(row.id)
    for dep in needed:
        try:
            _check_startable(dep)
        except StashHogError as exc:
            message = f"{row.name!r} needs {dep.name!r}: {exc.message}"
            raise StashHogError(message, key=exc.key, code=exc.code, status=exc.status) from None
    holders, now = lease_holders([dep.id for dep in needed]), datetime.now(UTC)
    chain = {dep.id for dep in needed} | {row.id}
    started = []
    for dep in needed:
        if dependencies.is_ready(dep, holders[str(dep.id)], now):
            continue
        if dep.desired_state != DesiredState.RUNNING or dep.status not in RUNNING_STATES:
            needers = [other.name for other in graph.needed_by(dep.id) if other.id in chain]
            note_in_daemon_log(dep.id, f"starting {dep.name}: needed by {', '.join(needers)}")
            _start(dep.id, deadline, True, None)
            started.append(dep.name)
        wait_until_ready(dep.id, deadline)
    if needed:
        order = " → ".join([*(dep.name for dep in needed), row.name])
        note_in_daemon_log(row.id, f"start order: {order}")
    return started


def _defer(row: Row, waiting: list[str], operator: bool, restart_count: int | None) -> bool:
    """Desired RUNNING, but no instance until what it needs is ready: the supervisor starts
    it then. False when the row changed meanwhile."""
    line = dependencies.waiting_line(waiting)
    values: dict[str, Any] = {"desired_state": DesiredState.RUNNING, "status_line": line}
    if operator and row.status == DaemonStatus.ERROR:
        values["status"] = DaemonStatus.STOPPED  # a fresh start, not a crash to restart
    if operator or restart_count is not None:
        values.update(restart_count=restart_count or 0, next_restart_at=None)
    changed = change_daemon(row.id, if_generation=row.generation,
                            only_if={"status": row.status}, **values)  # fmt: skip
    if changed is not None and row.status_line != line:
        note_in_daemon_log(row.id, f"{line} before starting")
    return changed is not None


def wait_until_ready(daemon_id: uuid.UUID, deadline: float) -> None:
    """Until the daemon is ready for its dependents, has failed or is no longer wanted, or
    ``deadline`` passes."""
    while time.monotonic() < deadline:
        row = find_daemon_row(daemon_id)
        if row.status == DaemonStatus.ERROR or row.desired_state != DesiredState.RUNNING:
            return
        if dependencies.is_ready(row, lease_holder(row.id), datetime.now(UTC)):
            return
        time.sleep(0.02)


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


@audited("restart")
def restart_daemon(ref: uuid.UUID | str, *, wait: float = 0.0) -> dict:
    """Stop it (after its dependents, waiting up to the stop timeout), then start it with its
    stored configuration, then the dependents that were running, each once what it needs is
    ready again (within ``wait``, else by the supervisor)."""
    deadline = time.monotonic() + wait
    row = find_daemon_row(ref)
    again = [
        dep
        for dep in reversed(dependencies.load_graph().dependents(row.id))
        if dep.desired_state == DesiredState.RUNNING and dep.enabled
    ]
    stopped = stop_daemon(ref, wait=current_app.config["STOP_TIMEOUT"] + 1)
    result = start_daemon(ref, wait=wait)
    wait_until_ready(row.id, deadline)
    for dep in again:
        note_in_daemon_log(dep.id, f"restarting {dep.name}: after {row.name}, once ready")
        _start(dep.id, deadline, True, None)
        wait_until_ready(dep.id, deadline)
    return {**result, "changed": True, "message": "daemon restarted",
            "dependents_stopped": stopped["dependents_stopped"],
            "dependents_restarted": [dep.name for dep in again]}  # fmt: skip


# -- bulk actions --------------------------------------------------------------------------


@audited_bulk("start_all")
def start_all() -> dict[str, Any]:
    """Start every enabled daemon (disabled ones are counted in ``skipped``)."""
    rows = dependencies.load_graph().start_order()  # each after what it needs
    result = _each([row for row in rows if row.enabled], start_daemon)
    result["skipped"] = sum(1 for row in rows if not row.enabled)
    return result


@audited_bulk("stop_all")
def stop_all() -> dict[str, Any]:
    """Stop every daemon, dependents before what they need (in waves); already stopped
    ones count as requested but not changed."""
    return _stop_ordered(all_daemon_rows())


@audited_bulk("restart_all")
def restart_all() -> dict[str, Any]:
    """Restart every enabled daemon that should be running: stop them all, wait (up to the
    stop timeout, once for all), then start them all."""
    targets = [
        r for r in all_daemon_rows() if r.enabled and r.desired_state == DesiredState.RUNNING
    ]
    stopping = _stop_ordered(targets)
    failed = {error["daemon_id"] for error in stopping["errors"]}
    deadline = time.monotonic() + current_app.config["STOP_TIMEOUT"] + 1
    stopped = [row for row in targets if str(row.id) not in failed]
    for row in stopped:
        remaining = max(deadline - time.monotonic(), 0.0)
        wait_for_status(row.id, STOPPED_STATES, remaining)
    in_order = dependencies.load_graph().start_order(row.id for row in stopped)
    starting = _each(in_order, lambda ref: start_daemon(ref, operator=True))
    return {
        "requested": len(targets),
        "changed": starting["changed"],
        "errors": stopping["errors"] + starting["errors"],
        "skipped": 0,
    }


def _stop_ordered(rows: list[Any]) -> dict[str, Any]:
    """Stop ``rows`` alone each, in waves: what nothing needs first, each wave once the one
    before has stopped (only when there are dependencies: one wave, no wait)."""
    results = [_each(wave, stop_daemon) for wave in _waves(rows)]
    return {
        "requested": sum(result["requested"] for result in results),
        "changed": sum(result["changed"] for result in results),
        "errors": [error for result in results for error in result["errors"]],
        "skipped": 0,
    }


def _waves(rows: list[Any]):
    waves = dependencies.load_graph().stop_waves(rows)
    for number, wave in enumerate(waves):
        yield wave
        if number < len(waves) - 1:
            deadline = time.monotonic() + current_app.config["STOP_TIMEOUT"] + 1
            for row in wave:
                wait_for_status(row.id, STOPPED_STATES, max(deadline - time.monotonic(), 0))


def _each(rows: list[Any], action: Callable[[uuid.UUID], dict]) -> dict[str, Any]:
    changed, errors = 0, []
    for row in rows:
        try:
            changed += bool(action(row.id)["changed"])
        except StashHogError as exc:
            errors.append({"daemon_id": str(row.id), "name": row.name, "error": exc.message})
    return {"requested": len(rows), "changed": changed, "errors": errors, "skipped": 0}
