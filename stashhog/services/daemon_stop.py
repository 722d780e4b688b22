"""Stopping daemons: one, or several in dependency order.

Stopping sets the desired state, then sends the stop (``stashhog.control``: a message on the
daemon's control channel, heard by any pool in milliseconds, and a revoke with SIGTERM, which
only a prefork child receives: in a threads worker the message alone stops the daemon, and
one that overruns restarts its worker, see workers/control.py). An
operator's stop of a daemon first stops what depends on it (``daemon_dependencies``), in waves:
those that nothing running needs first, and each wave once the one before has stopped (up to
the stop timeout). ``stop_only`` is the supervisor's: this daemon alone.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

from flask import current_app
from sqlalchemy.engine import Row

from stashhog.control import send_stop
from stashhog.errors import Conflict
from stashhog.models import DaemonStatus, DesiredState
from stashhog.models.enums import RUNNING_STATES, STOPPED_STATES
from stashhog.services import daemon_dependencies as dependencies
from stashhog.services.daemon_audit import audited, note_in_daemon_log
from stashhog.services.daemon_queries import find_daemon_row, get_daemon
from stashhog.services.daemon_state import change_daemon
from stashhog.services.lease import lease_holder


@audited("stop")
def stop_daemon(ref: uuid.UUID | str, *, wait: float = 0.0, cascade: bool = True) -> dict:
    """Ask for the daemon to stop, after what depends on it (``dependents_stopped``, in the
    order stopped); ``cascade=False`` refuses instead while any of them is up (409 naming
    them). Idempotent: a stopped daemon is left alone."""
    row = find_daemon_row(ref)
    waves = dependencies.dependents_to_stop(row.id)
    names = [dep.name for wave in waves for dep in wave]
    if names and not cascade:
        raise Conflict(
            f"daemon {row.name!r} is needed by {', '.join(names)}, which would stop first; "
            "stop them first, or stop it with cascade",
            dependents=names,
        )
    stop_in_waves(waves, f"it needs {row.name}, which is stopping")
    result = stop_only(row.id, wait=wait)
    if names:
        result["message"] += f" (after {', '.join(names)})"
    return {**result, "dependents_stopped": names}


def stop_only(ref: uuid.UUID | str, *, wait: float = 0.0) -> dict:
    """Stop this daemon alone, whatever depends on it. Idempotent."""
    for _attempt in range(5):
        row = find_daemon_row(ref)
        if row.desired_state == DesiredState.STOPPED and row.status not in RUNNING_STATES:
            if wait and row.status == DaemonStatus.STOPPING:
                wait_for_status(row.id, STOPPED_STATES, wait)
            return command_result(row.id, False, "daemon is already stopped")
        if _stop_once(row) is not None:
            break  # else the instance or another command changed the row: read again
    else:
        raise Conflict("daemon is changing concurrently; try again")
    if wait:
        wait_for_status(row.id, STOPPED_STATES, wait)
    result = command_result(row.id, True, "daemon stopped")
    if result["daemon"]["status"] == DaemonStatus.STOPPING:
        result["message"] = "stopping"
    return result


def stop_in_waves(waves: list[list[Row]], reason: str | None = None) -> list[dict]:
    """Stop each wave, then wait (up to the stop timeout) for it to have stopped before the
    next; a daemon that overruns is left to the supervisor's SIGKILL. Returns the results."""
    results = []
    for wave in waves:
        for row in wave:
            if reason:
                note_in_daemon_log(row.id, f"stopping {row.name} first: {reason}")
            results.append(stop_only(row.id))
        deadline = time.monotonic() + current_app.config["STOP_TIMEOUT"] + 1
        for row in wave:
            wait_for_status(row.id, STOPPED_STATES, max(deadline - time.monotonic(), 0.0))
    return results


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


def wait_for_status(daemon_id: uuid.UUID, statuses: frozenset, timeout: float) -> Row:
    """Poll the row until its status is one of ``statuses`` or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        row = find_daemon_row(daemon_id)
        if row.status in statuses or time.monotonic() >= deadline:
            return row
        time.sleep(0.003)


def command_result(daemon_id: uuid.UUID, changed: bool, message: str) -> dict:
    """A command's reply: the daemon as the API shows it now, ``changed`` and ``message``."""
    return {"daemon": get_daemon(daemon_id), "changed": changed, "message": message}
