"""One running daemon instance: the host a ``BaseDaemon`` talks to, and the asyncio program
that runs it beside its lease watch (workers/self_fencing.py), heartbeat (with the process
sample and its resource limits: workers/limits.py), log flusher and job monitor. What every
instance of the worker process shares (control subscriber, lease renewer, database threads:
workers/process_services.py) is the same in a prefork child (one instance) and a threads
worker (up to a thousand, each its own Celery task and event loop in a pool thread).

A stop has one deadline, ``STOP_TIMEOUT`` from the moment it is requested: cancelling
``run()``, ``on_stop()`` and the final log flush all share it, and the lines still unwritten
then are counted in the last line and the final status line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import signal
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from flask import Flask

from stashhog.daemons.base import BaseDaemon
from stashhog.models import DesiredState
from stashhog.services.fencing import Fenced
from workers.instance_control import ControlListener
from workers.instance_rows import record_heartbeat
from workers.job_tracker import JobTracker
from workers.limits import LimitWatch
from workers.log_pipeline import LogPipeline
from workers.process_services import THREADS, ProcessServices, services_for
from workers.sampler import ProcessSampler
from workers.self_fencing import SelfFencing

logger = logging.getLogger(__name__)
JOB_POLL_INTERVAL = 0.5
# The dropped-lines count changes with every line under overload: write it at most this often.
DROPPED_WRITE_INTERVAL = 1.0


class DaemonInstance(SelfFencing, ControlListener):
    def __init__(self, app: Flask, daemon_id: uuid.UUID, generation: int, ttl: float,
                 services: ProcessServices | None = None) -> None:  # fmt: skip
        self.app, self.daemon_id, self.generation, self.ttl = app, daemon_id, generation, ttl
        # Shared by every instance of this worker process: workers/process_services.py.
        self.services = services or services_for(app, "local")
        self.stop_timeout = app.config["STOP_TIMEOUT"]
        self.logs = LogPipeline(
            daemon_id, generation, self.call_db,
            max_lines=app.config["LOG_BUFFER_LINES"], max_bytes=app.config["LOG_BUFFER_BYTES"],
        )  # fmt: skip
        self.jobs = JobTracker(self)
        self.stop_event = asyncio.Event()
        self.stop_reason: str | None = None
        self.shutdown = self.fenced = False
        self.error: str | None = None
        self.unwritten = 0  # log lines still pending when the stop timeout ran out
        self.stop_deadline: float | None = None  # loop time by which the stop must be done
        self._status_line: str | None = None
        self._status_dirty = False
        self._dropped_written = 0
        self._background: set[asyncio.Task] = set()
        # Monotonic send time of the last lease renewal Redis confirmed, and when the last
        # database call completed (the runtime sets both at its claim).
        self.lease_confirmed_at = self.db_confirmed_at = time.monotonic()
        self.stepped_down: str | None = None  # "lease" or "database": why it gave up
        # When the event loop last ran _watch_lease: the process's renewer renews the lease
        # only while the loop is alive (workers/lease_renewer.py).
        self.loop_tick = time.monotonic()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()  # the heartbeat has something to write, or must end
        # A threads worker's process is every daemon's: no sample to call this one's
        # (workers/limits.py says what that means for its limits).
        shared = self.services.pool == THREADS
        self.sampler = None if shared else ProcessSampler()
        self.limits = LimitWatch(self, enforced=not shared)
        self.worker: str | None = None  # the worker's name, set by the runtime

    # -- the DaemonHost protocol -----------------------------------------------------------
    def emit_log(self, level: str, message: str) -> None:
        self.logs.emit(level, message)

    def set_status_line(self, text: str | None) -> None:
        if text != self._status_line and self.limits.breach is None:  # a breach's reason stays
            self._status_line, self._status_dirty = text, True
            self._wake.set()

    async def flush_logs(self) -> None:
        await self.logs.wait_flushed()

    @property
    def lines_lost(self) -> int:
        """Log lines of this run that were never stored (dropped, or unwritten at stop)."""
        return self.logs.dropped + self.unwritten

    async def call_db(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run blocking database work on the process's bounded database threads, in an app
        context of its own; retried while no connection can be had, then DatabaseBusy."""
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(
            self.services.db, self.services.run_db, fn, args, kwargs
        )
        self.db_confirmed_at = time.monotonic()
        return result

    def _with_app(self, fn, *args):
        with self.app.app_context():
            return fn(*args)

    async def _call_redis(self, fn: Callable[..., Any], *args: Any) -> Any:
        """A Redis call of this instance's own, on the process's Redis threads: never behind
        database calls (on a slow link those took every thread, and a lease lapsed)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.services.redis, self._with_app, fn, *args)

    # -- stopping --------------------------------------------------------------------------
    def request_stop(self, reason: str, *, shutdown: bool = False, fenced: bool = False,
                     until: float | None = None) -> None:  # fmt: skip
        """``until``: a monotonic time the whole stop must finish by (the lease's end)."""
        if not self.stop_event.is_set():
            self.stop_reason = reason
            self._set_deadline()
        if until is not None:
            self.stop_deadline = min(self._set_deadline(), until)
        self.shutdown |= shutdown
        self.fenced |= fenced
        self.stop_event.set()
        self.logs.stopping()
        self._wake.set()

    def _set_deadline(self) -> float:
        if self.stop_deadline is None:
            self.stop_deadline = asyncio.get_running_loop().time() + self.stop_timeout
        return self.stop_deadline

    def _remaining(self) -> float:
        return max(0.0, self._set_deadline() - asyncio.get_running_loop().time())

    # -- the program -----------------------------------------------------------------------
    async def main(self, daemon: BaseDaemon, heartbeat_interval: float) -> str:
        """Returns "stopped", "returned", "crashed" or "fenced"."""
        loop = self._loop = asyncio.get_running_loop()
        # A signal handler needs the main thread: a prefork child's. In a threads worker the
        # worker's own shutdown (workers/signals.py) and the control channel stop daemons.
        in_main = threading.current_thread() is threading.main_thread()
        if in_main:
            loop.add_signal_handler(signal.SIGTERM, self.request_stop, "SIGTERM received")
        try:
            if self.stop_reason:  # a SIGTERM arrived before the handler was installed
                self._set_deadline()
                self.stop_event.set()
            outcome = await self._supervised(daemon, heartbeat_interval)
            if not self.fenced:
                await self._finish_logs(outcome)
            self._count_unwritten()
            return "fenced" if self.fenced else outcome
        finally:
            # Closing the loop would leave SIGTERM at SIG_DFL, and a late revoke would then
            # kill the process before its final status is written: use a plain handler.
            if in_main:
                loop.remove_signal_handler(signal.SIGTERM)
                signal.signal(signal.SIGTERM, _late_sigterm)

    async def _supervised(self, daemon: BaseDaemon, heartbeat_interval: float) -> str:
        """Drive the daemon beside the stop watcher and the helper coroutines."""
        watcher = self._start_watcher(asyncio.get_running_loop())
        self.loop_tick = time.monotonic()
        self.services.leases.add(self)
        flusher = asyncio.create_task(
            self.logs.run(lambda: self.request_stop("fenced", fenced=True))
        )
        helpers = [
            asyncio.create_task(coro)
            for coro in (
                self._watch_lease(),
                self._heartbeat(heartbeat_interval),
                self._monitor_jobs(),
            )
        ]
        try:
            return await self._drive(daemon)
        finally:
            watcher.close()
            # Off the loop: it waits for a renewal in flight (workers/lease_renewer.py).
            await asyncio.get_running_loop().run_in_executor(
                self.services.redis, self.services.leases.remove, self
            )
            for task in helpers:
                task.cancel()
            if self.stepped_down == "database":
                # The daemon's code has ended: let a successor start now, not after a write
                # in flight gives up. What we still write is fenced by generation, so it
                # lands before the successor's claim or never.
                await self._release_lease()
            self.logs.close()  # closed, not cancelled: see LogPipeline.run
            await asyncio.gather(flusher, *helpers, return_exceptions=True)

    async def _finish_logs(self, outcome: str) -> None:
        def last_line(unwritten: int) -> str:
            line = f"stopped ({self.stop_reason or outcome})"
            if unwritten:
                line += f"; {unwritten} log lines not written within the stop timeout"
            return line

        try:
            self.unwritten = await self.logs.finish(self._set_deadline(), last_line)
        except Fenced:
            self.fenced = True

    async def _drive(self, daemon: BaseDaemon) -> str:
        runner = asyncio.create_task(self._run_daemon(daemon))
        stopper = asyncio.create_task(self.stop_event.wait())
        await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        if not runner.done():
            runner.cancel()
            await asyncio.wait({runner}, timeout=self._remaining())
        outcome = self.limits.final_outcome(self._outcome(daemon, runner))
        if not self.fenced:
            await self._call_on_stop(daemon)
        return outcome

    async def _run_daemon(self, daemon: BaseDaemon) -> None:
        await self.jobs.adopt()
        await daemon.on_start()
        daemon.info(f"started on generation {self.generation}")
        await daemon.run()

    def _outcome(self, daemon: BaseDaemon, runner: asyncio.Task) -> str:
        if not runner.done() or runner.cancelled():
            return "stopped"
        exc = runner.exception()
        if isinstance(exc, Fenced):
            self.fenced = True
            return "fenced"
        if exc is None:
            return "stopped" if self.stop_event.is_set() else "returned"
        self.error = "".join(traceback.format_exception(exc)).rstrip()
        daemon.error(f"run() raised {exc!r}; the daemon is now ERROR\n{self.error}")
        return "crashed"

    async def _call_on_stop(self, daemon: BaseDaemon) -> None:
        # The stop's deadline (or, after run() returned, a full STOP_TIMEOUT from now).
        deadline = asyncio.timeout_at(self._set_deadline())  # not wait_for: see .sleep
        try:
            async with deadline:
                await daemon.on_stop()
        except Exception as exc:
            if deadline.expired():
                daemon.error(
                    f"on_stop() did not finish within the stop timeout ({self.stop_timeout:g}s)"
                )
            else:
                daemon.log_exception(f"on_stop() failed: {exc!r}")

    def _count_unwritten(self) -> None:
        """Lines this run never stored are counted in the worker's log too: a stop without
        the database cannot write the count anywhere else."""
        self.logs.abandon()  # a fenced instance's pending lines (it skips the final flush)
        lost = self.logs.dropped + self.unwritten + self.logs.discarded
        if lost:
            logger.warning("generation %d: %d log lines not written (%s)", self.generation,
                           lost, self.stop_reason or "fenced")  # fmt: skip

    async def _heartbeat(self, interval: float) -> None:
        # Stops once a stop is requested, so a stop that overruns shows as a STOPPING row
        # that no longer changes (the supervisor escalates those to SIGKILL).
        # A process sample is due every METRICS_INTERVAL and goes with a heartbeat. It
        # sleeps until something is due (a status line change or a stop wakes it): a
        # thousand loops polling every 0.1 s cost a core.
        loop = asyncio.get_running_loop()
        sample_every = self.app.config["METRICS_INTERVAL"] if self.sampler else math.inf
        beat_at = sample_at = dropped_at = loop.time()
        while not self.stop_event.is_set():
            wake = min(beat_at + interval, sample_at + sample_every,
                       loop.time() + DROPPED_WRITE_INTERVAL)  # fmt: skip
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(wake):
                    await self._wake.wait()
            self._wake.clear()
            if self.stop_event.is_set():
                return
            now = loop.time()
            dropped_moved = self.logs.dropped != self._dropped_written
            if dropped_moved and now - dropped_at >= DROPPED_WRITE_INTERVAL:
                self._status_dirty, dropped_at = True, now
            beat_due, sample_due = now >= beat_at + interval, now >= sample_at + sample_every
            if not beat_due and not self._status_dirty and not sample_due:
                continue
            values = self.status_values()
            if beat_due or sample_due:
                # On a fixed cadence (a late wake does not push every later beat back),
                # unless a whole interval was missed.
                cadence = beat_due and now - beat_at < 2 * interval
                beat_at = beat_at + interval if cadence else now
                values["last_heartbeat"] = datetime.now(UTC)
            sample = self.sampler.sample() if sample_due and self.sampler else None
            sample_at = now if sample_due else sample_at
            self._status_dirty = False
            await self._write_heartbeat(values, sample)
            if sample is not None:
                await self.limits.observe(sample)

    def status_values(self, text: str | None = None) -> dict[str, Any]:
        """The status line to write (``text``, else the daemon's own, then the lines lost,
        if any) and the count of lines lost this run."""
        self._dropped_written = dropped = self.logs.dropped
        parts = [text or self._status_line]
        if self.unwritten:
            parts.append(f"{self.unwritten} log lines not written within the stop timeout")
        if dropped:
            parts.append(f"{dropped} log lines dropped")
        return {
            "status_line": " · ".join(part for part in parts if part) or None,
            "log_lines_dropped": self.lines_lost,
        }

    async def _write_heartbeat(self, values: dict, sample: dict | None = None) -> None:
        try:
            row = await self.call_db(
                record_heartbeat, self.daemon_id, self.generation, values, sample
            )
        except Exception:
            logger.warning("heartbeat write failed; retrying", exc_info=True)
            return
        if row is None:
            self.request_stop("superseded by a newer generation", fenced=True)
            return
        self.limits.follow(row)
        if row["desired_state"] == DesiredState.STOPPED:
            self.request_stop("desired state is STOPPED")

    def _spawn(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _monitor_jobs(self) -> None:
        while True:
            await self.jobs.until_watching()
            await asyncio.sleep(JOB_POLL_INTERVAL)
            try:
                await self.jobs.poll()
            except Fenced:
                self.request_stop("fenced", fenced=True)
                return
            except Exception:
                logger.warning("job monitor failed; retrying", exc_info=True)


def _late_sigterm(_signum, _frame) -> None:
    logger.info("SIGTERM while finishing a stop; ignored")
