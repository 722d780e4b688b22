"""The log pipeline of one daemon instance: ``emit`` never blocks; a flusher writes batches
to the database (one statement each) at least every 100 ms and publishes them.

Lines keep their order: one flush at a time, and a batch that failed for a passing database
error goes back to the front of the queue. A fenced instance drops its lines: it must not
write after its successor took over.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from stashhog.services.daemon_logs import LogLine, write_log_batch
from stashhog.services.fencing import Fenced

logger = logging.getLogger(__name__)

FLUSH_INTERVAL = 0.1
# Wake the flusher early when this many lines wait, so a burst goes out in large batches.
EAGER_FLUSH_LINES = 5000
MAX_BATCH = 50_000


class LogPipeline:
    def __init__(self, daemon_id, generation: int, call_db: Callable[..., Awaitable]) -> None:
        self.daemon_id = daemon_id
        self.generation = generation
        self.call_db = call_db
        self.pending: deque[LogLine] = deque()
        self.written = 0
        self._seq = itertools.count(1)
        self._wake: asyncio.Event | None = None
        self._closing = False
        self._waking = False
        self._loop: asyncio.AbstractEventLoop | None = None

    def emit(self, level: str, message: str) -> None:
        if "\x00" in message:  # PostgreSQL text cannot hold NUL; the batch would never land
            message = message.replace("\x00", "\ufffd")
        self.pending.append(LogLine(next(self._seq), level, message, datetime.now(UTC)))
        if len(self.pending) >= EAGER_FLUSH_LINES and not self._waking and self._wake is not None:
            self._waking = True  # once per flush: a call per line cost a third of emit()
            self._loop.call_soon_threadsafe(self._wake.set)

    async def run(self, on_fenced: Callable[[], None]) -> None:
        """Flush until ``close()``; the caller drains once more afterwards. Not to be
        cancelled: a write cancelled in flight still commits in its thread, and a later
        batch could overtake it."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        while not self._closing:
            try:
                async with asyncio.timeout(FLUSH_INTERVAL):  # not wait_for: see BaseDaemon.sleep
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()
            self._waking = False
            try:
                await self.flush()
            except Fenced:
                on_fenced()
                return

    def close(self) -> None:
        """Finish the flush in progress, then return from ``run()``."""
        self._closing = True
        if self._wake is not None:
            self._wake.set()

    async def flush(self, deadline: float | None = None) -> None:
        """Write everything pending, batch by batch (until ``deadline``, loop time)."""
        loop = asyncio.get_running_loop()
        while self.pending and (deadline is None or loop.time() < deadline):
            batch = [self.pending.popleft() for _ in range(min(len(self.pending), MAX_BATCH))]
            try:
                await self.call_db(write_log_batch, self.daemon_id, self.generation, batch)
            except Fenced:
                self.pending.clear()
                raise
            except Exception:
                self.pending.extendleft(reversed(batch))
                logger.exception("log flush failed; retrying")
                await asyncio.sleep(0.5)
                return
            self.written += len(batch)

    async def drain(self, timeout: float) -> int:
        """Final flush on stop: keep trying passing errors until ``timeout``. Returns how
        many lines could not be written in time (the stop timeout wins over a backlog)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while self.pending and asyncio.get_running_loop().time() < deadline:
            await self.flush(deadline)
        return len(self.pending)
