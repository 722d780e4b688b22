"""The runtime's side of a daemon's resource limits (the rule is
``stashhog.services.daemon_limits``): every process sample the heartbeat takes is checked
against the limits its last heartbeat write read back from the row, so a limit changed while
the daemon runs applies from the next sample.

On a breach the daemon's log gets a line (ERROR, or WARNING for ``warn``) saying which limit,
the value measured and the action, a ``daemon_limit`` event is published, and:

- ``restart``: the row turns STOPPING with the reason in ``last_error``; the instance stops and
  ends as a crash (ERROR, the reason in its run's error), so the supervisor restarts it by
  its restart policy, with backoff, and the breach counts in ``restart_count``.
- ``stop``: the same, with desired state STOPPED: it ends STOPPED, the reason in
  ``last_error`` and the status line.
- ``warn``: nothing else; at most once every ``WARN_EVERY`` seconds.

In a threads worker (``DAEMON_POOL=threads``) every daemon shares one process, whose memory
and CPU cannot be told apart per daemon: no samples are taken, the limits are not enforced
(neither here nor by the supervisor, which judges the samples), and a daemon with limits set
says so once in its log (WARNING) and in the worker's log.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections import deque
from typing import TYPE_CHECKING

from stashhog.models import DaemonStatus, DesiredState, LimitAction, LogLevel
from stashhog.services.daemon_limits import (
    CPU_WINDOW,
    WARN_EVERY,
    Breach,
    find_breach,
    has_limits,
    publish_breach,
)
from stashhog.services.daemon_state import change_daemon

if TYPE_CHECKING:
    from workers.instance import DaemonInstance

logger = logging.getLogger(__name__)
NOT_ENFORCED = (
    "resource limits are not enforced: this daemon runs in a threads worker, whose one "
    "process all its daemons share (memory and CPU cannot be told apart per daemon); run it "
    "on a prefork worker (DAEMON_POOL=prefork) for max_memory_mb / max_cpu_percent"
)


class LimitWatch:
    def __init__(self, instance: DaemonInstance, *, enforced: bool = True) -> None:
        self.instance, self.enforced = instance, enforced
        self._said_not_enforced = False
        self.row: dict = {}  # the daemon as the last heartbeat write returned it
        self.samples: deque[dict] = deque(maxlen=CPU_WINDOW)
        self.breach: Breach | None = None  # the breach this instance is stopping for
        self._warned_at = -math.inf

    def follow(self, row: dict) -> None:
        self.row = row
        if not self.enforced and not self._said_not_enforced and has_limits(row):
            self._said_not_enforced = True
            self.instance.emit_log(LogLevel.WARNING, NOT_ENFORCED)
            logger.warning("daemon %s: %s", self.instance.daemon_id, NOT_ENFORCED)

    async def observe(self, sample: dict) -> None:
        self.samples.append(sample)
        breach = find_breach(self.row, list(self.samples))
        if breach is None or self.breach is not None:
            return
        instance = self.instance
        if breach.action == LimitAction.WARN:
            if time.monotonic() - self._warned_at >= WARN_EVERY:
                self._warned_at = time.monotonic()
                self._log(LogLevel.WARNING, breach)
                await self._write(breach)
            return
        self._log(LogLevel.ERROR, breach)
        instance.set_status_line(breach.message)
        self.breach = breach  # from now on the status line stays the reason
        instance.error = breach.message  # the run's error
        await self._write(breach)
        instance.request_stop(breach.message)

    def final_outcome(self, outcome: str) -> str:
        """A restart's stop ends as a crash, so the restart budget counts it."""
        if self.breach and self.breach.action == LimitAction.RESTART and outcome == "stopped":
            return "crashed"
        return outcome

    def _log(self, level: str, breach: Breach) -> None:
        self.instance.emit_log(level, f"resource limit: {breach.message}")
        logger.log(logging.getLevelName(level), "daemon %s generation %d: %s",
                   self.instance.daemon_id, self.instance.generation, breach.message)  # fmt: skip

    async def _write(self, breach: Breach) -> None:
        instance = self.instance
        try:
            await instance.call_db(mark_breach, instance.daemon_id, instance.generation, breach)
        except Exception:  # the stop goes ahead; the final write records the reason anyway
            logger.warning("could not record the limit breach", exc_info=True)


def mark_breach(daemon_id: uuid.UUID, generation: int, breach: Breach) -> None:
    """The row says the instance is stopping and why (not for ``warn``), then the event."""
    if breach.action != LimitAction.WARN:
        values = {"status": DaemonStatus.STOPPING, "last_error": breach.message,
                  "status_line": breach.message}  # fmt: skip
        if breach.action == LimitAction.STOP:
            values["desired_state"] = DesiredState.STOPPED
        change_daemon(daemon_id, if_generation=generation, **values)
    publish_breach(daemon_id, breach)
