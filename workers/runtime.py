"""The runtime of one daemon instance inside its Celery task.

``DaemonRuntime.run()`` takes the lease, claims the row for its generation, then drives the
daemon's ``run()`` with ``asyncio.run`` beside its own coroutines: lease renewal, heartbeat,
stop watcher, log flusher and job monitor. SIGTERM (from ``revoke(terminate=True)``, in a
prefork child; a threads worker's daemons are pool threads, which no signal reaches) and a
stop message on the control channel both become cancellation of ``run()``; ``on_stop()`` runs,
the logs are flushed, the final status is written and the lease released.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import threading
import time
import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from flask import Flask
from sqlalchemy import select

from stashhog.control import send_stop
from stashhog.daemons import get_daemon_class
from stashhog.daemons.config import validate_configuration
from stashhog.database import retry_exhausted
from stashhog.errors import ConfigurationError, UnknownDaemonType
from stashhog.extensions import db
from stashhog.models import Daemon, DaemonStatus, DesiredState, RestartPolicy
from stashhog.models.enums import RunOutcome
from stashhog.observability import runs
from stashhog.services import lease
from stashhog.services.daemon_state import change_daemon
from workers.instance import DaemonInstance
from workers.process_services import services_for

logger = logging.getLogger(__name__)


class DaemonRuntime:
    def __init__(
        self, app: Flask, daemon_id: uuid.UUID, generation: int, task_id: str, hostname: str
    ) -> None:
        self.app, self.daemon_id, self.generation = app, daemon_id, generation
        self.task_id, self.hostname = task_id, hostname
        self.ttl = app.config["LEASE_TTL"]
        self.early_stop: str | None = None
        self.instance: DaemonInstance | None = None
        self.lease_sent = 0.0  # monotonic send time of the acquire that took the lease
        self.claimed = False  # the row was claimed: this instance ran (or runs)
        self.run_closed = False  # its run record closed with the final status

    def run(self) -> str:
        """Run the daemon until it stops; returns how it ended (for the task result/logs).
        Before the claim, a database without a free connection is waited for with backoff,
        then ``stashhog.database.DatabaseBusy`` (never a start left hanging)."""
        # Signals reach the main thread only: a prefork child's; a threads worker's daemons
        # are stopped by the worker's shutdown hook and the control channel.
        in_main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, self._early_sigterm) if in_main else None
        try:
            row = retry_exhausted(self._load)
            if not self._is_current(row):
                self._finish_unstarted()
                return "stale"
            if not self._acquire_lease():
                self._finish_unstarted()
                return "superseded"
            try:
                return self._run_owned(row)
            finally:
                lease.release_lease(self.daemon_id, self.generation)
        finally:
            if in_main:
                signal.signal(signal.SIGTERM, previous)

    def _early_sigterm(self, _signum, _frame) -> None:
        # Until the event loop installs its handler; the instance checks this once it has.
        self.early_stop = "SIGTERM received"
        if self.instance is not None:
            self.instance.stop_reason = self.early_stop

    def _run_owned(self, row) -> str:
        try:
            daemon_class = get_daemon_class(row.type)
            config = validate_configuration(daemon_class.Config, row.configuration)
        except (UnknownDaemonType, ConfigurationError) as exc:
            self._write_final(DaemonStatus.ERROR, last_error=f"cannot start: {exc}")
            return "error"
        now, claim_sent = datetime.now(UTC), time.monotonic()
        # A lease that lapsed while this waited for a connection is renewed (retaken) right
        # after (_renew_now); a newer generation meanwhile fails the claim.
        claimed = retry_exhausted(
            change_daemon,
            self.daemon_id, if_generation=self.generation,
            only_if={"desired_state": DesiredState.RUNNING},
            status=DaemonStatus.RUNNING, started_at=now, last_heartbeat=now, stopped_at=None,
            worker=self.hostname, worker_pid=os.getpid(), task_id=self.task_id,
            log_lines_dropped=0,
        )  # fmt: skip
        if claimed is None:
            self._finish_unstarted()
            return "stale"
        self.claimed = True
        retry_exhausted(runs.open_run, self.daemon_id, self.generation, self.hostname, os.getpid())
        services = services_for(self.app, self.hostname)
        instance = DaemonInstance(self.app, self.daemon_id, self.generation, self.ttl, services)
        instance.worker = self.hostname
        instance.lease_confirmed_at, instance.db_confirmed_at = self._renew_now(), claim_sent
        instance.stop_reason = self.early_stop
        self.instance = instance
        daemon = daemon_class(instance, row.name, config)
        outcome = asyncio.run(instance.main(daemon, config.heartbeat_interval))
        try:
            result = self._finish(instance, outcome, row.restart_policy)
        finally:
            instance.logs.writer.close()  # held for the final status, if it was not used
        # The row says how it ended, and its run record with it: a successor may start now.
        with contextlib.suppress(Exception):  # else run()'s own release tries again
            lease.release_lease(self.daemon_id, self.generation)
        if not self.run_closed:  # fenced, or the final write failed
            self._close_run(instance, outcome)
        return result

    def _run_ending(self, instance: DaemonInstance, outcome: str) -> dict:
        if outcome == "stopped" and "restart" in (instance.stop_reason or ""):
            outcome = RunOutcome.RESTARTED
        return dict(
            outcome=outcome, error=instance.error,
            lines_logged=instance.logs.written, lines_dropped=instance.lines_lost,
        )  # fmt: skip

    def _close_run(self, instance: DaemonInstance, outcome: str) -> None:
        """End this generation's run; a fenced one too (only its own record is touched)."""
        try:
            runs.close_run(self.daemon_id, self.generation, **self._run_ending(instance, outcome))
        except Exception:  # cut off from the database: the supervisor closes it instead
            logging.getLogger(__name__).warning("run record not closed", exc_info=True)

    def _finish(self, instance: DaemonInstance, outcome: str, restart_policy: str) -> str:
        if outcome == "fenced":
            return outcome  # a successor owns the row now: write nothing
        try:
            self._write_outcome(instance, outcome, restart_policy)
        except Exception:
            if instance.stepped_down is None:
                raise
            # Cut off from a service: the supervisor finalises the row (fenced by generation).
            logger.warning("generation %d: final status not written (%s)", self.generation,
                           instance.stop_reason, exc_info=True)  # fmt: skip
        return outcome

    def _write_outcome(self, instance: DaemonInstance, outcome: str, restart_policy: str) -> None:
        # The status line keeps the daemon's last text (or says how it ended) and counts
        # the log lines this run lost. The run record closes in the same transaction: whoever
        # sees the status sees how the run ended.
        run = self._run_ending(instance, outcome)
        if outcome == "crashed":
            values = dict(status=DaemonStatus.ERROR, last_error=instance.error,
                          **instance.status_values())  # fmt: skip
        elif outcome == "returned" and restart_policy != RestartPolicy.ALWAYS:
            values = dict(status=DaemonStatus.STOPPED, desired_state=DesiredState.STOPPED,
                          **instance.status_values("run() returned"))  # fmt: skip
        elif instance.shutdown:
            values = dict(status=DaemonStatus.STOPPED,
                          **instance.status_values("worker shut down"))  # fmt: skip
        else:
            values = dict(status=DaemonStatus.STOPPED, **instance.status_values())

        def close(conn) -> None:
            runs.close_run(self.daemon_id, self.generation, conn=conn, **run)

        # Committed (and so closed) unless a successor owns the row.
        self.run_closed = self._write_final(along=close, **values) is not None

    def _finish_unstarted(self) -> None:
        """Stopped before this instance ran: a stop that saw a lease (ours, or an older
        instance's) left the row STOPPING for us to finish, if it is still ours."""
        retry_exhausted(
            change_daemon,
            self.daemon_id, if_generation=self.generation,
            only_if={"desired_state": DesiredState.STOPPED, "status": DaemonStatus.STOPPING},
            status=DaemonStatus.STOPPED, stopped_at=datetime.now(UTC),
            status_line="stopped before it started",
        )  # fmt: skip

    def _write_final(self, status: DaemonStatus, **values) -> dict | None:
        values.update(if_generation=self.generation, status=status,
                      stopped_at=datetime.now(UTC), worker_pid=None)  # fmt: skip
        # On the connection the last log lines went on (a prefork child's), then closed.
        held = self.instance.logs.writer.take() if self.instance is not None else None
        if held is not None:
            try:
                return change_daemon(self.daemon_id, on=held, **values)
            except sa.exc.OperationalError:  # it broke meanwhile: a connection of its own
                logger.info("final status: held connection lost; connecting again")
            finally:
                with contextlib.suppress(Exception):
                    held.close()
        return retry_exhausted(change_daemon, self.daemon_id, **values)

    # -- ownership -------------------------------------------------------------------------
    def _load(self):
        with db.engine.connect() as conn:
            return conn.execute(
                select(Daemon.__table__).where(Daemon.__table__.c.id == self.daemon_id)
            ).first()

    def _is_current(self, row) -> bool:
        return (
            row is not None
            and row.generation == self.generation
            and row.desired_state == DesiredState.RUNNING
        )

    def _acquire_lease(self) -> bool:
        """Take the lease, waiting for an older instance that is still stopping."""
        deadline = time.monotonic() + self.app.config["STOP_TIMEOUT"] + self.ttl + 1
        asked = False
        while not self._try_acquire():
            holder = lease.lease_holder(self.daemon_id)
            if holder is not None and holder >= self.generation:
                return False
            if holder is not None and not asked:
                send_stop(self.daemon_id, holder, None)
                asked = True
            if time.monotonic() > deadline or not self._is_current(self._load()):
                return False
            time.sleep(0.01)
        return True

    def _renew_now(self) -> float:
        """Renew once between the claim and the instance's start: a claim that waited for a
        connection (200 children starting at once) would otherwise start the instance with
        a lease near its self-fencing margin. The send time Redis confirmed."""
        sent = time.monotonic()
        try:
            if lease.renew_lease(self.daemon_id, self.generation, self.ttl):
                return sent
        except Exception:  # the renewer and the lease watch take it from here
            logger.warning("lease renewal after the claim failed", exc_info=True)
        return self.lease_sent

    def _try_acquire(self) -> bool:
        sent = time.monotonic()
        if lease.acquire_lease(self.daemon_id, self.generation, self.ttl):
            self.lease_sent = sent
            return True
        return False
