"""The control side of a daemon instance (a mixin of ``DaemonInstance``): it listens on the
process's control subscriber (workers/control_watcher.py) and, once covered, reads its row
and the worker's shutdown mark once, so a stop published before it listened is not lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os

from stashhog.control import StopCommand, control_channel, is_shutting_down
from stashhog.models import DesiredState
from workers.control_watcher import Registration
from workers.instance_rows import read_ownership

logger = logging.getLogger(__name__)


class ControlListener:
    """Needs the instance's ``daemon_id``, ``generation``, ``worker``, ``services``,
    ``request_stop``, ``call_db``, ``_call_redis`` and ``_spawn``."""

    def _start_watcher(self, loop: asyncio.AbstractEventLoop) -> Registration:
        """Listen for this daemon's commands on the process's control subscriber."""

        def deliver(command: StopCommand) -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self._on_control, command)

        def covered() -> None:
            # A stop published before we listened is not replayed: read the row once, and
            # the worker's shutting-down mark (a shutdown's stop leaves the row as it is).
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(lambda: self._spawn(self._check_desired()))
                loop.call_soon_threadsafe(lambda: self._spawn(self._check_shutdown()))

        return self.services.control.register(control_channel(self.daemon_id), deliver, covered)

    async def _check_desired(self) -> None:
        try:
            row = await self.call_db(read_ownership, self.daemon_id)
        except Exception:
            logger.warning("could not read the desired state", exc_info=True)
            return
        if row is None or row.generation != self.generation:
            self.request_stop("superseded by a newer generation", fenced=True)
        elif row.desired_state == DesiredState.STOPPED:
            self.request_stop("desired state is STOPPED")

    async def _check_shutdown(self) -> None:
        if self.worker is None:
            return

        # The worker's main process set the mark: a prefork child's parent, or (solo) itself.
        def marked_now() -> bool:
            return any(is_shutting_down(self.worker, pid) for pid in (os.getppid(), os.getpid()))

        try:
            marked = await self._call_redis(marked_now)
        except Exception:
            logger.warning("could not read the worker's shutdown mark", exc_info=True)
            return
        if marked:
            self._on_control(StopCommand(self.generation, shutdown=True))

    def _on_control(self, command: StopCommand) -> None:
        if command.applies_to(self.generation):
            self.request_stop(command.reason, shutdown=command.shutdown)
