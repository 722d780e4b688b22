"""``BaseDaemon``: the API a daemon author writes against.

A subclass declares ``Config`` (a ``DaemonConfig`` schema) and implements ``async run()``;
``on_start()`` and ``on_stop()`` are optional. The runtime that hosts it (``workers.runtime``)
provides logging, stop signalling, database access off the event loop, and job tracking.
"""

from __future__ import annotations

import asyncio
import traceback
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, Protocol

from stashhog.daemons.config import SECRET_MASK, DaemonConfig, secret_values
from stashhog.models import LogLevel


class JobLimitReached(RuntimeError):
    """``launch_job`` refused: the daemon already has ``max_active_jobs`` pending or running."""


class DaemonJobs(Protocol):
    """The job helpers the runtime gives a daemon instance (``workers.job_tracker``)."""

    active: set[uuid.UUID]

    async def launch(
        self, job_type: str, metadata: dict, reason: str | None, limit: int | None = None
    ) -> uuid.UUID: ...
    async def wait(self, job_id: uuid.UUID, timeout: float | None = None) -> dict: ...
    async def cancel(self, job_id: uuid.UUID, reason: str | None) -> dict: ...


class DaemonHost(Protocol):
    """What the runtime gives a daemon instance."""

    daemon_id: uuid.UUID
    generation: int
    stop_event: asyncio.Event
    jobs: DaemonJobs

    def emit_log(self, level: str, message: str) -> None: ...
    async def flush_logs(self) -> None: ...
    def set_status_line(self, text: str | None) -> None: ...
    async def call_db(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any: ...


class BaseDaemon:
    daemon_type: ClassVar[str] = ""
    description: ClassVar[str] = ""
    Config: ClassVar[type[DaemonConfig]] = DaemonConfig

    def __init__(self, host: DaemonHost, name: str, config: DaemonConfig) -> None:
        self.host = host
        self.id = host.daemon_id
        self.name = name
        self.config = config
        # Values of secret keys, blanked out of every line and status this daemon shows.
        self._secrets = secret_values(config)

    # -- lifecycle: override these -------------------------------------------------------
    async def on_start(self) -> None:
        """Called once before ``run()``."""

    async def run(self) -> None:
        raise NotImplementedError

    async def on_stop(self) -> None:
        """Called once after ``run()`` ends, whatever the reason (within the stop timeout)."""

    # -- helpers ---------------------------------------------------------------------------
    def log(self, level: LogLevel | str, message: str) -> None:
        """Queue a log line; never blocks (a flusher writes batches every 100 ms). Past the
        instance's buffer cap the line is dropped and counted; see ``flush_logs``."""
        self.host.emit_log(str(LogLevel(level)), self._scrub(str(message)))

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, SECRET_MASK)
        return text

    async def flush_logs(self) -> None:
        """Wait until every line logged so far is written: backpressure, for a daemon that
        would rather slow down than have lines dropped when it logs faster than the
        database absorbs."""
        await self.host.flush_logs()

    def debug(self, message: str) -> None:
        self.log(LogLevel.DEBUG, message)

    def info(self, message: str) -> None:
        self.log(LogLevel.INFO, message)

    def warning(self, message: str) -> None:
        self.log(LogLevel.WARNING, message)

    def error(self, message: str) -> None:
        self.log(LogLevel.ERROR, message)

    @property
    def stopping(self) -> bool:
        return self.host.stop_event.is_set()

    async def sleep(self, seconds: float) -> bool:
        """Sleep, returning early (True) as soon as a stop is requested."""
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation.
        try:
            async with asyncio.timeout(max(seconds, 0)):
                await self.host.stop_event.wait()
        except TimeoutError:
            return False
        return True

    def update_status(self, text: str | None) -> None:
        """Set the one-line, live "what I am doing now"."""
        self.host.set_status_line(None if text is None else self._scrub(text))

    async def every(self, interval: float, step: Callable[[int], Awaitable[None]]) -> None:
        """Run ``step(iteration)`` every ``interval`` seconds until stopped. An exception in
        one iteration is logged with its traceback and the loop goes on."""
        iteration = 0
        while not self.stopping:
            iteration += 1
            try:
                await step(iteration)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.log_exception(f"iteration {iteration} failed: {exc!r}")
            if await self.sleep(interval):
                break

    def log_exception(self, message: str) -> None:
        self.error(f"{message}\n{traceback.format_exc().rstrip()}")

    # -- jobs ------------------------------------------------------------------------------
    async def launch_job(
        self, job_type: str, metadata: dict | None = None, reason: str | None = None
    ) -> uuid.UUID:
        """Create a job on the ``jobs`` queue, record LAUNCHED, and monitor it. Raises
        ``JobLimitReached`` if ``config.max_active_jobs`` are already pending or running."""
        return await self.host.jobs.launch(
            job_type, metadata or {}, reason, limit=self.config.max_active_jobs
        )

    async def wait_for_job(self, job_id: uuid.UUID, timeout: float | None = None) -> dict:
        """Wait until the job ends; returns the job as a dict. Its outcome is recorded in
        history exactly once (FINISHED, FAILED or CANCELLED)."""
        return await self.host.jobs.wait(job_id, timeout)

    async def cancel_job(self, job_id: uuid.UUID, reason: str | None = None) -> dict:
        """Ask the job to cancel; the terminal record follows when it has ended."""
        return await self.host.jobs.cancel(job_id, reason)

    @property
    def monitored_jobs(self) -> set[uuid.UUID]:
        return self.host.jobs.active
