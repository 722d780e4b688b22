"""MetadataGenerateWatcher: keeps a media library's generated metadata complete.

It indexes the files under its folders (``stashhog.media.scanner``: filesystem events for
prompt pickup, a periodic incremental rescan as the safety net) and launches
``METADATA_GENERATE`` jobs in batches for files whose metadata is missing or stale
(``stashhog.media.work``), at most ``max_concurrent_jobs`` at once, each file in one job.
A job that ends, however it ends, frees its slot and its unfinished files; one that runs past
``job_timeout`` is cancelled and stops taking a slot: one slow or failing batch never holds up
the others.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from stashhog.daemons.base import BaseDaemon, JobLimitReached
from stashhog.daemons.config import DaemonConfig
from stashhog.daemons.registry import register
from stashhog.media import work
from stashhog.media.fs_events import FsEvents
from stashhog.media.library_files import DEFAULT_EXTENSIONS, RootUnavailable, normalise_root
from stashhog.media.models import ALL_OUTPUTS, Output
from stashhog.media.scanner import scan_root
from stashhog.models import DaemonType, JobType

# Absolute (or under ~): a relative folder would depend on where the worker was started.
Folder = Annotated[str, StringConstraints(max_length=4096, pattern=r"^[/~][^\x00]*$")]
Extension = Annotated[str, StringConstraints(pattern=r"^\.?[A-Za-z0-9]{1,10}$")]
OutputName = Literal["probe", "thumbnail", "phash", "checksum"]


class WatcherConfig(DaemonConfig):
    roots: list[Folder] = Field(
        default=[],
        max_length=100,
        description="Folders to watch, subfolders included (absolute paths). A folder that "
        "does not exist or cannot be read is reported and the others are still watched.",
    )
    extensions: list[Extension] = Field(
        default=list(DEFAULT_EXTENSIONS),
        min_length=1,
        max_length=100,
        description="File extensions taken as media (videos and images; case-insensitive).",
    )
    scan_interval: float = Field(
        300,
        ge=1,
        le=86400,
        description="Seconds between full rescans (size + mtime), the safety net for changes "
        "filesystem events missed. An unchanged library's rescan writes nothing.",
    )
    settle_seconds: float = Field(
        0.5,
        ge=0,
        le=60,
        description="Seconds a file must be quiet after its last event before it is read, so "
        "a file still being written is taken once complete.",
    )
    batch_size: int = Field(20, ge=1, le=1000, description="Files per METADATA_GENERATE job.")
    max_concurrent_jobs: int = Field(
        2,
        ge=1,
        le=100,
        description="METADATA_GENERATE jobs running at once (also bounded by max_active_jobs).",
    )
    job_timeout: float = Field(
        3600,
        ge=1,
        le=86400,
        description="Seconds a METADATA_GENERATE job may take before the watcher cancels it "
        "and stops counting it against max_concurrent_jobs, so one slow batch cannot hold up "
        "the others; its unfinished files go to later batches.",
    )
    outputs: list[OutputName] = Field(
        default=list(ALL_OUTPUTS),
        min_length=1,
        max_length=4,
        description="Metadata to generate: probe (container, duration, size, frame rate, "
        "codecs, bitrate), thumbnail (cover image), phash (perceptual hash), checksum (oshash).",
    )


@register(DaemonType.METADATA_GENERATE_WATCHER)
class MetadataGenerateWatcher(BaseDaemon):
    description = (
        "Watches media folders and launches METADATA_GENERATE jobs for files whose metadata "
        "(probe, thumbnail, perceptual hash, checksum) is missing or stale."
    )
    Config = WatcherConfig
    config: WatcherConfig

    async def on_start(self) -> None:
        self.roots = _distinct_roots(self.config.roots)
        self.extensions = frozenset(e.lower().lstrip(".") for e in self.config.extensions)
        self.wanted = Output.mask(self.config.outputs)
        self.unavailable: dict[str, str] = {}
        self._wake = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._monitors: dict[uuid.UUID, asyncio.Task] = {}
        self._deadlines: dict[uuid.UUID, float] = {}  # loop time by which each job should end
        self._timed_out: set[uuid.UUID] = set()
        self.events = FsEvents(self._loop, self._wake.set)
        self.events.start()
        for job_id in list(self.monitored_jobs):
            self._monitor(job_id)
        self.info(f"watching {_plural(len(self.roots), 'root')}: {', '.join(self.roots) or '-'}")

    async def run(self) -> None:
        next_rescan = 0.0
        while not self.stopping:
            try:
                if self._loop.time() >= next_rescan:
                    await self.rescan()
                    next_rescan = self._loop.time() + self.config.scan_interval
                await self.apply_events()
                await self.enforce_job_timeout()
                await self.launch_batches()
                await self.report()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.log_exception(f"watcher pass failed: {exc!r}")
                await self.sleep(1)  # a failing database must not become a busy loop
            await self._idle(next_rescan - self._loop.time())

    async def on_stop(self) -> None:
        self.events.stop()
        for task in self._monitors.values():
            task.cancel()
        self.info("watcher stopping; its jobs run on and are re-adopted at the next start")

    # -- the index -------------------------------------------------------------------------
    async def rescan(self) -> None:
        changed = False
        for root in self.roots:
            result = await self._scan(root, None)
            if result is not None and result.changes:
                changed = True
                self.info(f"rescan of {root}: {result.describe()}")
        if not changed:
            readable = len(self.roots) - len(self.unavailable)
            self.debug(f"rescan: no changes in {_plural(readable, 'root')}")

    async def apply_events(self) -> None:
        for root, touched in self.events.take_settled(self.config.settle_seconds).items():
            result = await self._scan(root, touched)
            if result is not None and result.changes:
                self.info(f"changes in {root}: {result.describe()}")

    async def _scan(self, root: str, touched: set[str] | None):
        try:
            result = await self.host.call_db(scan_root, root, self.extensions, touched)
        except RootUnavailable as exc:
            if self.unavailable.get(root) != exc.reason:
                self.error(f"root {root} is unavailable ({exc.reason}); watching the others")
            self.unavailable[root] = exc.reason
            self.events.unwatch(root)
            return None
        if self.unavailable.pop(root, None) is not None:
            self.info(f"root {root} is available again")
        self._ensure_watched(root)
        return result

    def _ensure_watched(self, root: str) -> None:
        try:
            self.events.watch(root)
        except OSError as exc:  # e.g. the inotify watch limit: the rescans still cover it
            self.warning(f"cannot watch {root} for events ({exc}); relying on rescans")

    # -- jobs ------------------------------------------------------------------------------
    async def launch_batches(self) -> None:
        await self.host.call_db(work.release_ended_claims)
        limit = min(self.config.max_concurrent_jobs, self.config.max_active_jobs)
        while self._running() < limit and not self.stopping:
            batch = await self.host.call_db(
                work.next_batch, self.wanted, self.config.batch_size, self.roots
            )
            if not batch or not await self._launch(batch):
                return

    async def _launch(self, batch: list[uuid.UUID]) -> bool:
        metadata = {"file_ids": [str(i) for i in batch], "outputs": list(self.config.outputs)}
        reason = f"{_plural(len(batch), 'file')} need metadata"
        try:
            job_id = await self.launch_job(JobType.METADATA_GENERATE, metadata, reason)
        except JobLimitReached as exc:
            self.debug(f"not launching a batch now: {exc}")
            return False
        await self.host.call_db(work.claim, job_id, batch, self.wanted)
        self.info(f"launched METADATA_GENERATE job {job_id} for {_plural(len(batch), 'file')}")
        self._monitor(job_id)
        return True

    def _running(self) -> int:
        return len(self.monitored_jobs - self._timed_out)

    def _monitor(self, job_id: uuid.UUID) -> None:
        if job_id not in self._monitors:
            self._deadlines[job_id] = self._loop.time() + self.config.job_timeout
            self._monitors[job_id] = asyncio.create_task(self._follow(job_id))

    async def enforce_job_timeout(self) -> None:
        now = self._loop.time()
        for job_id, deadline in list(self._deadlines.items()):
            if now >= deadline and job_id not in self._timed_out:
                self._timed_out.add(job_id)
                reason = f"ran longer than job_timeout ({self.config.job_timeout:g} s)"
                self.warning(f"cancelling job {job_id}: {reason}")
                await self.cancel_job(job_id, reason)

    async def _follow(self, job_id: uuid.UUID) -> None:
        try:
            job = await self.wait_for_job(job_id)
        finally:
            self._monitors.pop(job_id, None)
            self._deadlines.pop(job_id, None)
            self._timed_out.discard(job_id)
            self._wake.set()  # a slot is free: launch the next batch now
        summary = job.get("result") or {}
        if job["status"] == "completed":
            self.info(
                f"job {job_id} completed: {summary.get('ready', 0)} ready, "
                f"{summary.get('failed', 0)} failed, {summary.get('skipped', 0)} skipped"
            )
            for failure in summary.get("errors", [])[:5]:
                self.warning(f"file failed: {failure['error']}")
        else:
            self.warning(f"job {job_id} ended {job['status']}: {job.get('error') or ''}".strip())

    # -- status ----------------------------------------------------------------------------
    async def report(self) -> None:
        counts = await self.host.call_db(work.status_counts, self.roots)
        pending = await self.host.call_db(work.pending_count, self.wanted, self.roots)
        files = sum(n for status, n in counts.items() if status != "missing")
        watched = len(self.roots) - len(self.unavailable)
        parts = [
            f"watching {_plural(watched, 'root')}",
            _plural(files, "file"),
            f"{pending:,} pending",
            f"{_plural(self._running(), 'job')} running",
        ]
        if counts.get("failed"):
            parts.append(f"{counts['failed']:,} failed")
        if self.unavailable:
            parts.append(f"{_plural(len(self.unavailable), 'root')} unavailable")
        self.update_status(", ".join(parts) if self.roots else "no roots configured")

    async def _idle(self, until_rescan: float) -> None:
        now = self._loop.time()
        settle = self.events.next_settle(self.config.settle_seconds)
        deadlines = [d - now for j, d in self._deadlines.items() if j not in self._timed_out]
        timeout = max(
            0.0, min([until_rescan, *deadlines, *([settle] if settle is not None else [])])
        )
        waiters = {
            asyncio.ensure_future(self._wake.wait()),
            asyncio.ensure_future(self.host.stop_event.wait()),
        }
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
        self._wake.clear()


def _distinct_roots(roots: list[str]) -> list[str]:
    """Normalised, without duplicates or folders inside another root (watched already)."""
    unique = sorted(set(normalise_root(root) for root in roots))
    return [r for r in unique if not any(_inside(r, other) for other in unique if other != r)]


def _inside(path: str, folder: str) -> bool:
    return path.startswith(folder.rstrip("/") + "/")


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"
