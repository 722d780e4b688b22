"""The control protocol: both ends of the stop command on a daemon's control channel.

A stop is a JSON message ``{"action": "stop", "generation": N, "shutdown": bool}`` published on
``control_channel(daemon_id)``; every worker pool hears it in milliseconds, where a revoke
reaches prefork children only. ``send_stop`` is the sending end (services and worker hooks);
``parse_command`` and ``StopCommand.applies_to`` are the receiving end (the runtime's control
watcher), so sender and receiver cannot drift apart.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

from stashhog.celery_app import get_celery
from stashhog.events import get_redis, key

STOP = "stop"


@dataclass(frozen=True)
class StopCommand:
    """Stop the instance of ``generation`` (and any older one); ``None`` stops whichever runs.
    A ``shutdown`` stop (the worker is going down) leaves the desired state as it is."""

    generation: int | None
    shutdown: bool = False

    def applies_to(self, generation: int) -> bool:
        return self.generation is None or self.generation >= generation

    @property
    def reason(self) -> str:
        return "worker shutting down" if self.shutdown else "stop requested"


def control_channel(daemon_id: object) -> str:
    """Where commands for one daemon are published (any worker pool hears them)."""
    return key("control", daemon_id)


def encode_command(command: StopCommand) -> str:
    return json.dumps(
        {"action": STOP, "generation": command.generation, "shutdown": command.shutdown}
    )


def parse_command(data: bytes | str) -> StopCommand | None:
    """The command in a control message; None for anything else (a malformed or unknown
    message is ignored, never allowed to end the watcher)."""
    try:
        message = json.loads(data)
    except (TypeError, ValueError):
        return None
    if not isinstance(message, dict) or message.get("action") != STOP:
        return None
    generation = message.get("generation")
    if generation is not None and not isinstance(generation, int):
        return None
    return StopCommand(generation, bool(message.get("shutdown")))


def send_stop(
    daemon_id: uuid.UUID, generation: int, task_id: str | None, *, shutdown: bool = False
) -> None:
    """Publish the stop on the control channel, then revoke the task with SIGTERM (not for a
    shutdown: the worker is stopping its own daemons and must not be signalled)."""
    message = encode_command(StopCommand(generation, shutdown))
    get_redis().publish(control_channel(daemon_id), message)
    if task_id and not shutdown:
        get_celery().control.revoke(task_id, terminate=True, signal="SIGTERM")


# How long a worker's "shutting down" mark outlives the message: an instance that subscribes
# to its control channel after the shutdown's stop was published still finds the mark.
SHUTDOWN_MARK_SECONDS = 300


def shutdown_mark(worker: str, worker_pid: int) -> str:
    """The key marking one worker process (name and main pid: a restarted worker with the
    same name is not marked) as shutting down."""
    return key("worker", worker, str(worker_pid), "shutting-down")


def mark_shutting_down(worker: str, worker_pid: int) -> None:
    get_redis().set(shutdown_mark(worker, worker_pid), 1, ex=SHUTDOWN_MARK_SECONDS)


def is_shutting_down(worker: str, worker_pid: int) -> bool:
    return bool(get_redis().exists(shutdown_mark(worker, worker_pid)))


def send_kill(worker: str, pid: int) -> None:
    """The last resort: ask ``worker`` to SIGKILL its pool child ``pid`` (the
    ``kill_pool_process`` remote-control command, by name: see workers/control.py)."""
    get_celery().control.broadcast(
        "kill_pool_process", arguments={"pid": pid}, destination=[worker]
    )
