"""The daemon task: one long-lived task per running daemon, on the ``daemons`` queue."""

from __future__ import annotations

import uuid

from celery import shared_task
from flask import current_app

from workers import control, signals  # noqa: F401  (remote control command, signal handlers)
from workers.runtime import DaemonRuntime


# Early ack and no time limits: see celeryconfig.py and ARCHITECTURE.md §6.
@shared_task(
    name="stashhog.run_daemon",
    bind=True,
    acks_late=False,
    time_limit=None,
    soft_time_limit=None,
    ignore_result=True,
)
def run_daemon(self, daemon_id: str, generation: int) -> str:
    runtime = DaemonRuntime(
        current_app._get_current_object(),
        uuid.UUID(daemon_id),
        int(generation),
        self.request.id,
        self.request.hostname or "unknown",
    )
    return runtime.run()
