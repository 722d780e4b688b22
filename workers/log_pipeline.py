"""The log pipeline of one daemon instance: ``emit`` never blocks; a flusher writes batches
to the database (one COPY each) and publishes each while the next one is written, so the
database and this process work at the same time.

The flusher writes as soon as lines wait and the previous write has ended: a line emitted
while the pipeline is idle goes out at once (live latency), and lines emitted during a write
go out together in the next one (batches grow with the load, for throughput). Writes start
at least ``MIN_FLUSH_GAP`` apart, so a daemon logging 1,000 lines/s costs about a hundred
writes and published events a second, not one per line, for every live viewer to receive.

Lines keep their order: one flush at a time, and a batch that failed for a passing database
error goes back to the front of the queue. A fenced instance drops its lines: it must not
write after its successor took over.

The buffer is bounded (lines and approximate bytes, waiting or being written): past the cap a
line is dropped and counted, and a WARNING line says how many once there is room again, so a
daemon logging faster than the database absorbs costs bounded memory and the live view stays
at most a few seconds behind. ``wait_flushed()`` is the backpressure alternative. Batches are
sized to take about ``BATCH_SECONDS`` at the write rate measured so far, so a stop never waits
behind one huge batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from stashhog.database import HeldConnection
from stashhog.services.daemon_logs import (
    LogLine,
    publish_log_lines,
    ran_out_of_time,
    store_log_batch,
    write_log_batch,
)
from stashhog.services.fencing import Fenced

logger = logging.getLogger(__name__)

# Writes (and so published events) start at least this far apart: at most a hundred a
# second per daemon for the relay to fan out, each line at most this late.
MIN_FLUSH_GAP = 0.01
# A batch this large is published while the next one is written (the database and this
# process then work at once); a smaller one is stored and published in one call, one thread
# hop instead of three (live latency).
OVERLAP_LINES = 1000
MAX_BATCH = 50_000
# A batch should take about this long at the measured write rate: big enough to be cheap
# per line, small enough that a stop (or close) waits at most this long for one in flight.
BATCH_SECONDS = 0.25
# Write rate assumed before the first measurement: about what PostgreSQL absorbed on two
# busy cores (lines/s); the estimate follows the real rate from the first large batch on.
INITIAL_RATE = 20_000.0
# Memory of a buffered line besides its text (tuple, timestamp, str headers), measured.
LINE_OVERHEAD = 200
# The final flush gets at least this long even when on_stop() used the whole stop timeout,
# so the lines that explain the stop (on_stop's own, "did not finish") still land.
FINAL_GRACE = 0.2
DROP_WARNING = "{} lines dropped: log rate above what the database absorbs"


def line_bytes(message: str) -> int:
    """Approximate memory of one buffered line."""
    size = len(message) if message.isascii() else len(message.encode("utf-8", "surrogatepass"))
    return size + LINE_OVERHEAD


class LogPipeline:
    def __init__(
        self,
        daemon_id,
        generation: int,
        call_db: Callable[..., Awaitable],
        *,
        max_lines: int = 50_000,
        max_bytes: int = 32 * 1024 * 1024,
    ) -> None:
        self.daemon_id = daemon_id
        self.generation = generation
        self.call_db = call_db
        self.max_lines, self.max_bytes = max_lines, max_bytes
        self.pending: deque[LogLine] = deque()
        self.written = 0
        self.dropped = 0  # refused past the cap, this run
        self.discarded = 0  # given up on when the instance was fenced
        self._unreported = 0  # dropped since the last warning line
        self._warnings: dict[int, int] = {}  # seq of each unwritten warning -> its count
        self._held_lines = self._held_bytes = 0  # pending or in flight
        self._seq = 0  # last seq given out
        self._done_seq = 0  # every line up to this seq is written (or discarded)
        self._waiters: list[tuple[int, asyncio.Future]] = []
        self._rate = INITIAL_RATE
        self._wake = asyncio.Event()
        self._closing = False
        self._stopping = False  # see stopping()
        self._closed = asyncio.Event()
        self._idle = False  # the flusher waits for lines: the next emit() wakes it
        self._waking = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._publishing: asyncio.Future | None = None
        # Kept between batches while a full one waits, and for the stop's last writes (the
        # instance's runtime closes it after the final status).
        self.writer = HeldConnection()

    # -- the daemon's side -----------------------------------------------------------------
    def emit(self, level: str, message: str) -> None:
        if "\x00" in message:  # PostgreSQL text cannot hold NUL; the batch would never land
            message = message.replace("\x00", "\ufffd")
        size = line_bytes(message)
        if self._unreported:
            if not self._has_room(2, size + LINE_OVERHEAD + 64):
                self._drop()
                return
            self._report_drops()
        elif not self._has_room(1, size):
            self._drop()
            return
        self._append(level, message, size)
        if self._idle and not self._waking and self._loop is not None:
            self._waking = True  # once per idle spell: a call per line cost a third of emit()
            self._loop.call_soon_threadsafe(self._wake.set)

    async def wait_flushed(self) -> None:
        """Wait until every line emitted so far is written (or the pipeline gave up on it)."""
        if self._done_seq >= self._seq:
            return
        future = asyncio.get_running_loop().create_future()
        self._waiters.append((self._seq, future))
        self._wake.set()
        await future

    def _has_room(self, lines: int, size: int) -> bool:
        return (
            self._held_lines + lines <= self.max_lines and self._held_bytes + size <= self.max_bytes
        )

    def _drop(self) -> None:
        self.dropped += 1
        self._unreported += 1

    def _report_drops(self) -> None:
        message = DROP_WARNING.format(self._unreported)
        self._warnings[self._seq + 1] = self._unreported
        self._unreported = 0
        self._append("WARNING", message, line_bytes(message))

    def _append(self, level: str, message: str, size: int) -> None:
        self._seq += 1
        self.pending.append(LogLine(self._seq, level, message, datetime.now(UTC)))
        self._held_lines += 1
        self._held_bytes += size

    # -- the flusher -----------------------------------------------------------------------
    async def run(self, on_fenced: Callable[[], None]) -> None:
        """Write batch after batch until ``close()``; the caller drains once more afterwards.
        Not to be cancelled: a write cancelled in flight still commits in its thread, and a
        later batch could overtake it."""
        self._loop = loop = asyncio.get_running_loop()
        began = -MIN_FLUSH_GAP
        while not self._closing:
            self._idle = True  # before looking: a line emitted from now on wakes us
            if not self._worth_writing():
                await self._wake.wait()
            self._idle = False
            self._wake.clear()
            self._waking = False
            if (gap := began + MIN_FLUSH_GAP - loop.time()) > 0:
                with contextlib.suppress(TimeoutError):  # a close() ends the gap: a stop
                    async with asyncio.timeout(gap):  # must not wait for it
                        await self._closed.wait()
            if self._closing or not self._worth_writing():
                continue
            began = loop.time()
            try:
                await self._write_batch(self._batch_size(began, None))
            except Fenced:
                await self.settle()
                on_fenced()
                return
        await self.settle()

    def stopping(self) -> None:
        """A stop was requested: a few lines (on_stop's) now wait for ``finish()``, which
        writes them with the last line in one write, unless the daemon waits for them
        (``wait_flushed``) or they grow to a batch worth writing on its own."""
        self._stopping = True
        self._wake.set()

    def _worth_writing(self) -> bool:
        if not self.pending:
            return False
        return not self._stopping or bool(self._waiters) or len(self.pending) >= OVERLAP_LINES

    def close(self) -> None:
        """Finish the batch in flight, then return from ``run()``."""
        self._closing = True
        self._closed.set()
        self._wake.set()

    async def flush(self, deadline: float) -> None:
        """Write everything pending, batch by batch, until ``deadline`` (loop time)."""
        loop = asyncio.get_running_loop()
        while self.pending and loop.time() < deadline:
            if not await self._write_batch(self._batch_size(loop.time(), deadline), deadline):
                return

    def _batch_size(self, now: float, deadline: float | None) -> int:
        seconds = BATCH_SECONDS if deadline is None else min(BATCH_SECONDS, deadline - now)
        return max(1, min(len(self.pending), MAX_BATCH, int(self._rate * seconds)))

    async def _write_batch(self, size: int, deadline: float | None = None) -> bool:
        """Store the next ``size`` lines and publish them (a large batch while the next one
        is stored); False after a passing error (the lines are kept). Before a ``deadline``
        (a stop's), PostgreSQL cancels a write still running at it: a batch that meets a
        slow moment (the full-text index merging its pending list, a few hundred ms, more
        on a busy machine) stays pending, to be counted as not written, rather than
        overrun the stop."""
        batch = [self.pending.popleft() for _ in range(size)]
        began = time.monotonic()
        if small := size < OVERLAP_LINES:
            await self.settle()  # it publishes too: after the batch before it
        write = write_log_batch if small else store_log_batch
        if deadline is not None:
            left = max(0.05, deadline - asyncio.get_running_loop().time())
            write = functools.partial(write, within=left)
        try:
            ids = await self.call_db(self.writer.run, write, self.daemon_id, self.generation,
                                     batch, keep=self._behind)  # fmt: skip
        except Fenced:
            self.discarded += self._discard(batch) + self._discard(self.pending)
            raise
        except Exception as exc:
            self.pending.extendleft(reversed(batch))
            if deadline is not None and ran_out_of_time(exc):
                return False  # the deadline has come: finish() counts them
            logger.exception("log flush failed; retrying")
            await asyncio.sleep(0.5)
            return False
        self._measure(len(batch), time.monotonic() - began)
        self.written += len(batch)
        if small:
            self._published(batch)
        else:
            await self.settle()  # events in order, and at most two batches held in memory
            self._publishing = asyncio.ensure_future(self._publish(batch, ids))
        return True

    def _behind(self) -> bool:
        """A batch worth its own write already waits (read on the writing thread)."""
        return len(self.pending) >= OVERLAP_LINES and not self._closing

    async def _publish(self, batch: list[LogLine], ids: dict[int, int]) -> None:
        try:
            await self.call_db(publish_log_lines, self.daemon_id, self.generation, batch, ids)
        except Exception:  # pub/sub is best effort: the lines are stored
            logger.exception("could not publish log lines")
        finally:
            self._published(batch)

    def _published(self, batch: list[LogLine]) -> None:
        self._release(batch)  # written and published: wait_flushed() returns
        if self._unreported and self._has_room(1, LINE_OVERHEAD + 64):
            self._report_drops()  # room is back, and the daemon may have gone quiet

    async def settle(self) -> None:
        """Wait for the batch being published, if any."""
        if self._publishing is not None:
            await self._publishing
            self._publishing = None

    def _measure(self, lines: int, seconds: float) -> None:
        # Small batches are mostly per-statement overhead and would understate the rate.
        if lines >= 1000 and seconds > 0:
            self._rate = 0.5 * self._rate + 0.5 * (lines / seconds)

    def _release(self, lines) -> None:
        self._held_lines -= len(lines)
        self._held_bytes -= sum(line_bytes(line.message) for line in lines)
        if lines:
            self._done_seq = max(self._done_seq, lines[-1].seq)
        for line in lines if self._warnings else ():
            self._warnings.pop(line.seq, None)
        while self._waiters and self._waiters[0][0] <= self._done_seq:
            _seq, future = self._waiters.pop(0)
            if not future.done():
                future.set_result(None)

    def abandon(self) -> None:
        """Give up on the lines still pending (a fenced instance must not write them):
        they count as discarded."""
        self.discarded += self._discard(self.pending)

    def _discard(self, lines) -> int:
        """Give up on ``lines`` (emptying the deque or list); returns how many."""
        count = len(lines)
        self._release(list(lines))
        lines.clear()
        return count

    # -- stopping --------------------------------------------------------------------------
    async def finish(self, deadline: float, last_line: Callable[[int], str]) -> int:
        """The final flush on stop: write what fits before ``deadline`` (loop time, but at
        least FINAL_GRACE from now), give up on the rest, then write ``last_line(unwritten)``
        (and the drop warning, if owed) as the last lines. Returns how many lines were not
        written in time."""
        loop = asyncio.get_running_loop()
        deadline = max(deadline, loop.time() + FINAL_GRACE)
        await self.settle()
        if await self._finish_in_one(last_line):
            return 0
        while self.pending and loop.time() < deadline:
            await self.flush(deadline)
        await self.settle()
        # A drop warning given up on is owed again, in the warning written last.
        owed = [self._warnings[line.seq] for line in self.pending if line.seq in self._warnings]
        unwritten = self._discard(self.pending) - len(owed)
        self._unreported += sum(owed)
        if self._unreported:
            self._report_drops()
        message = last_line(unwritten)
        self._append("INFO", message, line_bytes(message))
        final = list(self.pending)
        self.pending.clear()
        try:  # kept for the final status
            await self.call_db(self.writer.run, write_log_batch, self.daemon_id,
                               self.generation, final, keep=lambda: True)  # fmt: skip
            self.written += len(final)
        except Fenced:  # what it gave up on still counts (the instance says how many)
            self.discarded += unwritten
            raise
        except Exception:  # the database is gone for now: the status write says the rest
            logger.exception("could not write the last log lines")
        finally:
            self._release(final)
        return unwritten

    async def _finish_in_one(self, last_line: Callable[[int], str]) -> bool:
        """The usual stop: the few lines still pending and the last line in one write (one
        connection, one transaction: a prefork child opens one per call). False, with the
        pending lines as they were, when that does not apply or the write failed for a
        passing error (the caller then writes them batch by batch)."""
        if not self.pending or len(self.pending) >= OVERLAP_LINES or self._unreported:
            return False
        message = last_line(0)
        self._append("INFO", message, line_bytes(message))
        batch = list(self.pending)
        self.pending.clear()
        try:  # kept for the final status
            await self.call_db(self.writer.run, write_log_batch, self.daemon_id,
                               self.generation, batch, keep=lambda: True)  # fmt: skip
        except Fenced:  # the daemon's lines count as given up on (the last line is ours)
            last = batch.pop()
            self.discarded += self._discard(batch)
            self._release([last])
            raise
        except Exception:
            logger.exception("log flush failed; retrying")
            last = batch.pop()  # taken back (its seq too): written again with the count
            self._seq -= 1
            self._held_lines -= 1
            self._held_bytes -= line_bytes(last.message)
            self.pending.extend(batch)
            return False
        self.written += len(batch)
        self._release(batch)
        return True
