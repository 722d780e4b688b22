"""One running daemon instance: the host a ``BaseDaemon`` talks to, and the asyncio program
that runs it beside lease renewal, heartbeat (with the process sample and its resource
limits: workers/limits.py), stop watcher, log flusher and job monitor.

A stop has one deadline, ``STOP_TIMEOUT`` from the moment it is requested: cancelling
``run()``, ``on_stop()`` and the final log flush all share it, and the lines still unwritten
then are counted in the last line and the final status line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
import traceback
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from flask import Flask

from stashhog.control import StopCommand, control_channel, is_shutting_down
from stashhog.daemons.base import BaseDaemon
from stashhog.models import DesiredState
from stashhog.services import lease
from stashhog.services.fencing import Fenced
from workers.control_watcher import ControlWatcher
from workers.instance_rows import read_ownership, record_heartbeat
from workers.job_tracker import JobTracker
from workers.limits import LimitWatch
from workers.log_pipeline import LogPipeline
from workers.sampler import ProcessSampler

logger = logging.getLogger(__name__)
JOB_POLL_INTERVAL = 0.5
# The dropped-lines count changes with every line under overload: write it at most this often.
DROPPED_WRITE_INTERVAL = 1.0
# Self-fencing across hosts. The lease is ours until (send time of the last renewal Redis
# confirmed) + TTL, on this host's monotonic clock; the instance stops this fraction of the
# TTL before that, so it has ended before a successor can take over. No wall clock is used.
LEASE_MARGIN = 1 / 6
# Without one database call completing within this fraction of the TTL, the instance gives
# its lease up: a host cut off from PostgreSQL cannot write, so another should run it. (A
# liveness decision only: what it writes is fenced by generation either way.)
DB_GRACE = 5 / 6


class DaemonInstance:
    def __init__(self, app: Flask, daemon_id: uuid.UUID, generation: int, ttl: float) -> None:
        self.app, self.daemon_id, self.generation, self.ttl = app, daemon_id, generation, ttl
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
        self._probing, self._probed_at = False, 0.0
        self._lease_thread = ThreadPoolExecutor(1, thread_name_prefix="lease")
        self.sampler = ProcessSampler()
        self.limits = LimitWatch(self)
        self.worker: str | None = None  # the worker's name, set by the runtime

    # -- the DaemonHost protocol -----------------------------------------------------------
    def emit_log(self, level: str, message: str) -> None:
        self.logs.emit(level, message)

    def set_status_line(self, text: str | None) -> None:
        if text != self._status_line and self.limits.breach is None:  # a breach's reason stays
            self._status_line, self._status_dirty = text, True

    async def flush_logs(self) -> None:
        await self.logs.wait_flushed()

    @property
    def lines_lost(self) -> int:
        """Log lines of this run that were never stored (dropped, or unwritten at stop)."""
        return self.logs.dropped + self.unwritten

    async def call_db(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run blocking database work in a thread, in an app context of its own."""
        return await asyncio.to_thread(self._in_app_context, fn, args, kwargs)

    def _in_app_context(self, fn, args, kwargs):
        with self.app.app_context():
            result = fn(*args, **kwargs)
        self.db_confirmed_at = time.monotonic()
        return result

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

    def _set_deadline(self) -> float:
        if self.stop_deadline is None:
            self.stop_deadline = asyncio.get_running_loop().time() + self.stop_timeout
        return self.stop_deadline

    def _remaining(self) -> float:
        return max(0.0, self._set_deadline() - asyncio.get_running_loop().time())

    # -- the program -----------------------------------------------------------------------
    async def main(self, daemon: BaseDaemon, heartbeat_interval: float) -> str:
        """Returns "stopped", "returned", "crashed" or "fenced"."""
        loop = asyncio.get_running_loop()
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
            self._lease_thread.shutdown(wait=False)
            # Closing the loop would leave SIGTERM at SIG_DFL, and a late revoke would then
            # kill the process before its final status is written: use a plain handler.
            loop.remove_signal_handler(signal.SIGTERM)
            signal.signal(signal.SIGTERM, _late_sigterm)

    async def _supervised(self, daemon: BaseDaemon, heartbeat_interval: float) -> str:
        """Drive the daemon beside the stop watcher and the helper coroutines."""
        watcher = self._start_watcher(asyncio.get_running_loop())
        flusher = asyncio.create_task(
            self.logs.run(lambda: self.request_stop("fenced", fenced=True))
        )
        helpers = [
            asyncio.create_task(coro)
            for coro in (
                self._renew_lease(),
                self._watch_lease(),
                self._heartbeat(heartbeat_interval),
                self._monitor_jobs(),
            )
        ]
        try:
            return await self._drive(daemon)
        finally:
            watcher.stop()
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

    # -- helper coroutines -----------------------------------------------------------------
    async def _renew_lease(self) -> None:
        # A fixed cadence from each send, not a pause after each reply: on a slow link a
        # reply's delay would otherwise be added to the gap between confirmed sends, and two
        # slow replies in a row (200 ms + one retransmission each) reached the self-fencing
        # margin with a healthy lease.
        interval = min(1.0, self.ttl / 3)
        sent = time.monotonic()
        while True:
            await asyncio.sleep(max(0.0, sent + interval - time.monotonic()))
            if self.stepped_down:
                return
            sent = time.monotonic()
            try:
                ours = await self._lease_call(lease.renew_lease, self.ttl)
            except Exception:
                logger.warning("lease renewal failed; retrying", exc_info=True)
                continue
            if not ours:
                self.request_stop("lease taken by a newer instance", fenced=True)
                return
            self.lease_confirmed_at = max(self.lease_confirmed_at, sent)

    def _with_app(self, fn, *args):
        with self.app.app_context():
            return fn(*args)

    async def _lease_call(self, fn, *args):
        """``fn(daemon_id, generation, *args)`` on the lease's own thread: renewals never
        wait behind database calls for a thread of the default executor (on a slow link
        those took them all, and a healthy lease lapsed)."""
        loop = asyncio.get_running_loop()
        call = (self._with_app, fn, self.daemon_id, self.generation, *args)
        return await loop.run_in_executor(self._lease_thread, *call)

    def _database_lost(self, interval: float) -> bool:
        """Probe the database when nothing reached it lately; past DB_GRACE without a
        success, give the lease up (True: stop renewing)."""
        now = time.monotonic()
        silent = now - self.db_confirmed_at
        if silent > self.ttl * DB_GRACE:
            self.stepped_down = "database"
            logger.warning("generation %d: database unreachable for %.1fs; giving the lease up",
                           self.generation, silent)  # fmt: skip
            self.request_stop(f"database unreachable for {silent:.1f}s",
                              until=time.monotonic() + interval)  # fmt: skip
            return True
        if silent > interval and not self._probing and now - self._probed_at > interval / 2:
            self._probing, self._probed_at = True, now
            self._spawn(self._probe_database())
        return False

    async def _probe_database(self) -> None:
        try:
            await self._check_desired()
        finally:
            self._probing = False

    async def _watch_lease(self) -> None:
        """Stop before the lease can have expired in Redis unless a renewal sent later
        was confirmed (Redis unreachable, or replies slower than the TTL); give it up when
        the database is unreachable."""
        interval = min(1.0, self.ttl / 3)
        while True:
            if self._database_lost(interval):
                return
            ends = self.lease_confirmed_at + self.ttl
            now = time.monotonic()
            if now >= ends - self.ttl * LEASE_MARGIN:
                self.stepped_down = "lease"
                logger.warning("generation %d: lease not confirmed for %.1fs; stopping",
                               self.generation, now - self.lease_confirmed_at)  # fmt: skip
                self.request_stop("lease not confirmed by Redis", until=ends)
                return
            await asyncio.sleep(min(0.1, ends - self.ttl * LEASE_MARGIN - now))

    async def _release_lease(self) -> None:
        try:
            await self._lease_call(lease.release_lease)
        except Exception:
            logger.warning("could not release the lease; it expires by itself", exc_info=True)

    def _count_unwritten(self) -> None:
        """Lines this run never stored are counted in the worker's log too: a stop without
        the database cannot write the count anywhere else."""
        lost = self.logs.dropped + self.unwritten + self.logs.discarded
        if lost:
            logger.warning("generation %d: %d log lines not written (%s)", self.generation,
                           lost, self.stop_reason or "fenced")  # fmt: skip

    async def _heartbeat(self, interval: float) -> None:
        # Stops once a stop is requested, so a stop that overruns shows as a STOPPING row
        # that no longer changes (the supervisor escalates those to SIGKILL).
        # A process sample is due every METRICS_INTERVAL and goes with a heartbeat.
        elapsed = since_dropped = since_sample = 0.0
        sample_every = self.app.config["METRICS_INTERVAL"]
        while not self.stop_event.is_set():
            await asyncio.sleep(0.1)
            elapsed += 0.1
            since_dropped += 0.1
            since_sample += 0.1
            dropped_moved = self.logs.dropped != self._dropped_written
            if dropped_moved and since_dropped >= DROPPED_WRITE_INTERVAL:
                self._status_dirty, since_dropped = True, 0.0
            sample_due = since_sample >= sample_every
            if elapsed < interval and not self._status_dirty and not sample_due:
                continue
            values = self.status_values()
            if elapsed >= interval or sample_due:
                values["last_heartbeat"], elapsed = datetime.now(UTC), 0.0
            sample = self.sampler.sample() if sample_due else None
            since_sample = 0.0 if sample_due else since_sample
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

    def _start_watcher(self, loop: asyncio.AbstractEventLoop) -> ControlWatcher:
        def deliver(command: StopCommand) -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self._on_control, command)

        def subscribed() -> None:
            # A stop published before we listened is not replayed: read the row once, and
            # the worker's shutting-down mark (a shutdown's stop leaves the row as it is).
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(lambda: self._spawn(self._check_desired()))
                loop.call_soon_threadsafe(lambda: self._spawn(self._check_shutdown()))

        watcher = ControlWatcher(self.app.config["REDIS_URL"], control_channel(self.daemon_id),
                                 deliver, subscribed)  # fmt: skip
        watcher.start()
        return watcher

    def _spawn(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

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
        loop = asyncio.get_running_loop()

        # The worker's main process set the mark: a prefork child's parent, or (solo) itself.
        def marked_now() -> bool:
            return any(is_shutting_down(self.worker, pid) for pid in (os.getppid(), os.getpid()))

        try:
            marked = await loop.run_in_executor(None, self._with_app, marked_now)
        except Exception:
            logger.warning("could not read the worker's shutdown mark", exc_info=True)
            return
        if marked:
            self._on_control(StopCommand(self.generation, shutdown=True))

    def _on_control(self, command: StopCommand) -> None:
        if command.applies_to(self.generation):
            self.request_stop(command.reason, shutdown=command.shutdown)

    async def _monitor_jobs(self) -> None:
        while True:
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
