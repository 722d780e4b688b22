"""The lease renewer of a worker process: one thread renewing every local instance's lease in
one Redis pipeline per interval (``lease.renew_leases``), however many daemons the process
runs.

A fixed cadence from each send, not a pause after each reply: on a slow link a reply's delay
would otherwise be added to the gap between confirmed sends, and two slow replies in a row
(200 ms + one retransmission each) reached the self-fencing margin with a healthy lease. Each
instance is given the send time of the renewal Redis confirmed (its ``_watch_lease`` fences
itself on that, unchanged), and an answer "not ours" fences that instance only.

A lease is renewed only while its instance's event loop is alive (it ticked within two
intervals): a daemon blocking its loop lets its lease lapse, as when each loop renewed its own.
Except while it is stopping, up to ``STUCK_GRACE`` past its stop deadline: a daemon stuck in
its stop then still holds a thread (threads pool) or a process, and a live lease is what
makes the supervisor escalate (kill, or restart the threads worker: workers/control.py)
rather than mark it gone and leave it stuck.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from flask import Flask

from stashhog.services import lease

if TYPE_CHECKING:
    from workers.instance import DaemonInstance

logger = logging.getLogger(__name__)
# The supervisor kills a stop overdue by STOP_TIMEOUT + 2 s, at its next pass (1 s).
STUCK_GRACE = 5.0


class LeaseRenewer(threading.Thread):
    def __init__(self, app: Flask, on_round: Callable[[], None] | None = None) -> None:
        super().__init__(name="lease-renewer", daemon=True)
        self.app, self.on_round = app, on_round
        self.ttl = app.config["LEASE_TTL"]
        self.interval = lease.renewal_interval(self.ttl)
        self._lock = threading.Lock()
        # Held while a pipeline is out: ``remove`` waits for it, so a lease released right
        # after is never taken back by a renewal sent before (the Lua retakes a missing key).
        self._round = threading.Lock()
        self._instances: set[DaemonInstance] = set()
        self.rounds = 0  # pipelines sent (one per interval while any lease is held)
        self.renewed = 0  # leases in the last pipeline

    def add(self, instance: DaemonInstance) -> None:
        with self._lock:
            self._instances.add(instance)
            if not self.is_alive():
                self.start()

    def remove(self, instance: DaemonInstance) -> None:
        """No renewal for ``instance`` from now on (blocks while a pipeline is out)."""
        with self._round:
            self._forget(instance)

    def _forget(self, instance: DaemonInstance) -> None:
        with self._lock:
            self._instances.discard(instance)

    @property
    def held(self) -> int:
        with self._lock:
            return len(self._instances)

    def stopping(self) -> set[DaemonInstance]:
        """The local instances asked to stop already (a stuck one is among them)."""
        with self._lock:
            return {i for i in self._instances if i.stop_event.is_set()}

    def running(self, besides: set[DaemonInstance]) -> bool:
        """Whether any local instance other than ``besides`` still holds its lease here."""
        with self._lock:
            return bool(self._instances - besides)

    def release_all(self) -> None:
        """Give up every local lease and renew none from now on: the process is about to
        end its instances at once (a threads worker restarting: workers/control.py)."""
        with self._round:
            with self._lock:
                instances, self._instances = self._instances, set()
            for instance in instances:
                try:
                    lease.release_lease(instance.daemon_id, instance.generation)
                except Exception:  # it expires within the TTL anyway
                    logger.warning("lease of %s not released", instance.daemon_id, exc_info=True)

    def _renews(self, instance: DaemonInstance, sent: float) -> bool:
        if instance.stepped_down:
            return False
        if instance.loop_tick >= sent - 2 * self.interval:
            return True
        deadline = instance.stop_deadline  # loop time: the monotonic clock
        return deadline is not None and sent < deadline + STUCK_GRACE

    def run(self) -> None:
        with self.app.app_context():
            sent = time.monotonic()
            while True:
                time.sleep(max(0.0, sent + self.interval - time.monotonic()))
                sent = time.monotonic()
                with self._round:
                    self._renew_all(sent)
                if self.on_round is not None:
                    try:
                        self.on_round()
                    except Exception:
                        logger.debug("process counters not published", exc_info=True)

    def _renew_all(self, sent: float) -> None:
        with self._lock:
            batch = [i for i in self._instances if self._renews(i, sent)]
        if not batch:
            return
        try:
            answers = lease.renew_leases([(i.daemon_id, i.generation) for i in batch], self.ttl)
        except Exception:
            logger.warning("lease renewal of %d instance(s) failed; retrying", len(batch),
                           exc_info=True)  # fmt: skip
            return
        self.rounds, self.renewed = self.rounds + 1, len(batch)
        for instance, ours in zip(batch, answers, strict=True):
            if ours:
                instance.lease_confirmed(sent)
            else:
                self._forget(instance)
                instance.lease_lost()
