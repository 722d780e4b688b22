"""What a job handler is given: its metadata, a way to report progress, and cancellation."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from pydantic import BaseModel

# How often a handler may ask the database whether it was cancelled, and how long one slice
# of ``JobContext.sleep`` is: together they bound how late a running job notices a cancel
# (about 100 ms), at the cost of a primary-key SELECT every slice.
CANCEL_CHECK_INTERVAL = 0.05
SLEEP_SLICE = 0.05


class JobCancelled(Exception):
    """Raised inside a handler when its job has been asked to stop."""


class JobContext:
    """The handler's view of its job. The runner supplies the two callbacks, so a handler
    never touches the job row itself."""

    def __init__(
        self,
        job_id: uuid.UUID,
        metadata: BaseModel,
        *,
        on_progress: Callable[[int, str | None], object],
        probe_cancelled: Callable[[], bool],
        check_interval: float = CANCEL_CHECK_INTERVAL,
    ) -> None:
        self.job_id = job_id
        self.metadata = metadata
        self._on_progress = on_progress
        self._probe_cancelled = probe_cancelled
        self._check_interval = check_interval
        self._last_probe = float("-inf")
        self._cancelled = False

    def report_progress(self, percent: float, message: str | None = None) -> None:
        """Record progress (clamped to 0-100) and a short status message."""
        self._on_progress(max(0, min(100, int(percent))), message)

    def is_cancelled(self) -> bool:
        """True once the job is no longer wanted; asks the database at most every interval."""
        if not self._cancelled:
            now = time.monotonic()
            if now - self._last_probe >= self._check_interval:
                self._last_probe = now
                self._cancelled = self._probe_cancelled()
        return self._cancelled

    def check_cancelled(self) -> None:
        """Raise ``JobCancelled`` if the job has been cancelled."""
        if self.is_cancelled():
            raise JobCancelled(f"job {self.job_id} was cancelled")

    def sleep(self, seconds: float) -> None:
        """Sleep in short slices, raising ``JobCancelled`` as soon as a cancel is seen."""
        deadline = time.monotonic() + seconds
        while True:
            self.check_cancelled()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            time.sleep(min(SLEEP_SLICE, remaining))
