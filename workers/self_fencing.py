"""Self-fencing of a daemon instance (a mixin of ``DaemonInstance``): it stops before its
lease can have expired in Redis, and gives the lease up when the database is unreachable.

The lease is ours until (send time of the last renewal Redis confirmed) + TTL, on this host's
monotonic clock; the process's renewer (workers/lease_renewer.py) gives each instance those
send times. No wall clock is used.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from stashhog.services import lease

logger = logging.getLogger(__name__)
# The instance stops this fraction of the TTL before its lease's end, so it has ended before
# a successor can take over.
LEASE_MARGIN = 1 / 6
# Without one database call of its worker (any process: workers/process_services.py)
# completing within this fraction of the TTL, the instance gives its lease up: a host cut
# off from PostgreSQL cannot write, so another should run it. (A liveness decision only:
# what it writes is fenced by generation either way.)
DB_GRACE = 5 / 6


class SelfFencing:
    """Needs the instance's ``ttl``, ``generation``, ``daemon_id``, ``services``,
    ``lease_confirmed_at``, ``db_confirmed_at``, ``stepped_down``, ``loop_tick``, ``_loop``,
    ``request_stop``, ``_spawn``, ``_check_desired`` and ``_call_redis``."""

    def lease_confirmed(self, sent: float) -> None:
        """From the renewer's thread: Redis confirmed the renewal sent at ``sent``."""
        self.lease_confirmed_at = max(self.lease_confirmed_at, sent)

    def lease_lost(self) -> None:
        """From the renewer's thread: another generation holds the lease."""
        self._from_thread(self.request_stop, "lease taken by a newer instance", fenced=True)

    def _from_thread(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                self._loop.call_soon_threadsafe(lambda: fn(*args, **kwargs))

    def _db_seen_at(self) -> float:
        """When a call of this process last reached the database: it proves it for the host."""
        return max(self.db_confirmed_at, self.services.db_confirmed_at)

    def _database_lost(self, interval: float) -> bool:
        """Probe the database when nothing reached it lately; past DB_GRACE without a
        success, give the lease up (True: stop renewing)."""
        now = time.monotonic()
        silent = now - self._db_seen_at()
        if silent > self.ttl * DB_GRACE:
            self.stepped_down = "database"
            logger.warning("generation %d: database unreachable for %.1fs; giving the lease up",
                           self.generation, silent)  # fmt: skip
            self.request_stop(f"database unreachable for {silent:.1f}s",
                              until=time.monotonic() + interval)  # fmt: skip
            return True
        if silent > interval and self.services.claim_probe(interval):
            self._spawn(self._probe_database())
        return False

    async def _probe_database(self) -> None:
        try:
            await self._check_desired()
        finally:
            self.services.probe_done()

    async def _watch_lease(self) -> None:
        """Stop before the lease can have expired in Redis unless a renewal sent later
        was confirmed (Redis unreachable, or replies slower than the TTL); give it up when
        the database is unreachable."""
        interval = lease.renewal_interval(self.ttl)
        while True:
            self.loop_tick = time.monotonic()
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
            # Wake at the next point anything can change (the lease's stop point moves only
            # later; a database silent for an interval is probed then), at least every
            # interval: the renewer wants loop_tick within two. A thousand loops waking
            # every 0.1 s cost a core; every half interval, a third of the worker's CPU.
            seen = self._db_seen_at()
            probe_at = seen + interval if now < seen + interval else now + interval / 2
            wake = min(now + interval, ends - self.ttl * LEASE_MARGIN, probe_at,
                       seen + self.ttl * DB_GRACE)  # fmt: skip
            await asyncio.sleep(max(0.0, wake - now))

    async def _release_lease(self) -> None:
        try:
            await self._call_redis(lease.release_lease, self.daemon_id, self.generation)
        except Exception:
            logger.warning("could not release the lease; it expires by itself", exc_info=True)
