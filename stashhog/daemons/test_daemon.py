"""TestDaemon: the seed's example daemon, exercising every capability of the framework."""

from __future__ import annotations

import asyncio
import contextlib
import mmap
import time
import uuid

import psutil
from pydantic import Field, field_validator

from stashhog.daemons.base import BaseDaemon, JobLimitReached
from stashhog.daemons.config import DaemonConfig, nested_error, secret_field
from stashhog.daemons.registry import register
from stashhog.errors import JobValidationError
from stashhog.jobs import validate_job_metadata
from stashhog.models import DaemonType, JobType

PAGE = mmap.PAGESIZE


class SimulatedError(RuntimeError):
    pass


class TestDaemonConfig(DaemonConfig):
    # Minimums: 0.01 s is 100 iterations a second (with lines_per_iteration, up to a million
    # lines/s: enough to overload the log pipeline on purpose); 0.5 s between jobs is the
    # fastest any test or benchmark uses, and max_active_jobs bounds the queue anyway.
    log_interval: float = Field(
        5, ge=0.01, le=3600, description="Seconds between iterations (at least 0.01)."
    )
    job_interval: float = Field(
        30, ge=0.5, le=86400, description="Seconds between TEST jobs (at least 0.5)."
    )
    heartbeat_interval: float = Field(
        10, ge=0.1, le=3600, description="Seconds between heartbeat rows in the database."
    )
    lines_per_iteration: int = Field(
        1, ge=1, le=10_000, description="DEBUG lines logged each iteration (to load the logs)."
    )
    simulate_errors: bool = Field(
        False, description="Raise an error every 20th iteration (logged and survived)."
    )
    webhook_token: str = secret_field(
        description="Token for a webhook the daemon would call (write-only: never shown)."
    )
    crash_after: float | None = Field(
        None, ge=0.1, le=86400,
        description="Seconds after which run() raises, so the daemon crashes (off when unset).",
    )  # fmt: skip
    allocate_mb_per_iteration: int = Field(
        0, ge=0, le=1024,
        description="MB of memory it keeps more each iteration, to grow its RSS (to try "
        "max_memory_mb); 0: off.",
    )  # fmt: skip
    busy_fraction: float = Field(
        0, ge=0, le=1,
        description="Share of each iteration's interval it spins the CPU, blocking its event "
        "loop meanwhile (to try max_cpu_percent); 0: off.",
    )  # fmt: skip
    job_metadata: dict = Field(
        default_factory=dict,
        description="Metadata for the TEST jobs it launches (checked against the TEST job's "
        "schema: steps, step_seconds, fail_at_step, ignore_cancel).",
    )

    @field_validator("job_metadata")
    @classmethod
    def _valid_for_test_jobs(cls, value: dict) -> dict:
        # Checked when saved, not at every iteration; stored as given (defaults not filled).
        try:
            validate_job_metadata(JobType.TEST, value)
        except JobValidationError as exc:
            raise nested_error(exc.key, exc.reason) from None
        return value


@register(DaemonType.TEST_DAEMON)
class TestDaemon(BaseDaemon):
    __test__ = False  # not a pytest class
    description = "Example daemon: logs at every level, launches and monitors TEST jobs."
    Config = TestDaemonConfig
    config: TestDaemonConfig

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._monitors: set[asyncio.Task] = set()
        self._last_launch = 0.0
        self._kept: list[mmap.mmap] = []  # allocate_mb_per_iteration's memory

    async def on_start(self) -> None:
        self._loop_time = asyncio.get_running_loop().time
        self._last_launch = self._loop_time()
        for job_id in list(self.monitored_jobs):
            self._monitor(job_id)
        self.info(f"Test daemon started (log every {self.config.log_interval:g}s)")

    async def run(self) -> None:
        crash_after = self.config.crash_after
        # An iteration spins busy_fraction of log_interval: the pause is the rest of it.
        pause = self.config.log_interval * (1 - self.config.busy_fraction)
        if crash_after is None:
            await self.every(pause, self.iterate)
            return
        # An exception in one iteration is survived; only one escaping run() is a crash.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(crash_after):
                await self.every(pause, self.iterate)
        raise SimulatedError(f"crash_after: crashing after {crash_after:g}s, as configured")

    async def iterate(self, iteration: int) -> None:
        self._load_resources()
        self.update_status(f"iteration {iteration}, monitoring {len(self.monitored_jobs)} jobs")
        self.debug(f"Iteration {iteration}")
        for line in range(2, self.config.lines_per_iteration + 1):
            self.debug(f"Iteration {iteration} line {line}")
        if iteration % 5 == 0:
            rss_mb = psutil.Process().memory_info().rss / 1024 / 1024
            self.info(f"Memory {rss_mb:.1f} MB RSS; monitoring {len(self.monitored_jobs)} jobs")
        if iteration % 10 == 0:
            self.warning(f"Iteration {iteration}: periodic warning")
        if self._loop_time() - self._last_launch >= self.config.job_interval:
            self._last_launch = self._loop_time()
            await self._launch()
        if self.config.simulate_errors and iteration % 20 == 0:
            raise SimulatedError(f"simulated error at iteration {iteration}")

    def _load_resources(self) -> None:
        if megabytes := self.config.allocate_mb_per_iteration:
            # Anonymous mmap rather than a bytearray: given back to the system when closed
            # (malloc may keep freed blocks), so the pool process it ran in shrinks again.
            block = mmap.mmap(-1, megabytes * 1024 * 1024)
            block[::PAGE] = b"\x01" * len(range(0, len(block), PAGE))  # touched: RSS grows
            self._kept.append(block)
        if busy := self.config.busy_fraction:
            # A plain loop, on purpose: the event loop (heartbeat included) waits meanwhile.
            until = time.monotonic() + busy * self.config.log_interval
            while time.monotonic() < until:
                pass

    async def _launch(self) -> None:
        try:
            job_id = await self.launch_job(
                JobType.TEST, self.config.job_metadata, "periodic test job"
            )
        except JobLimitReached as exc:
            self.warning(f"Skipped a TEST job: {exc}")
            return
        self.info(f"Launched TEST job {job_id}")
        self._monitor(job_id)

    def _monitor(self, job_id: uuid.UUID) -> None:
        task = asyncio.create_task(self._watch(job_id))
        self._monitors.add(task)
        task.add_done_callback(self._monitors.discard)

    async def _watch(self, job_id: uuid.UUID) -> None:
        job = await self.wait_for_job(job_id)
        self.info(f"TEST job {job_id} ended {job['status']}")

    async def on_stop(self) -> None:
        for task in self._monitors:
            task.cancel()
        for block in self._kept:
            block.close()
        self._kept.clear()
        self.info("Test daemon stopping")
