"""Jobs a daemon instance launched or adopted, watched until each ends: the runtime's side of
``BaseDaemon``'s job helpers (``DaemonHost.jobs``).

History is written here: LAUNCHED, MONITORED (adopted after a restart), and exactly one
terminal record (FINISHED, FAILED or CANCELLED) per job, with the outcome in ``reason``.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING

from sqlalchemy import exists, select

from stashhog.daemons.base import JobLimitReached
from stashhog.extensions import db
from stashhog.models import DaemonJobAction, DaemonJobHistory, Job, JobStatus
from stashhog.serializers import job_to_dict
from stashhog.services import job_service
from stashhog.services.daemon_history import TERMINAL_ACTIONS, record_job_action
from stashhog.services.fencing import hold_generation

if TYPE_CHECKING:
    from stashhog.daemons.base import DaemonHost

OUTCOME_ACTIONS = {
    JobStatus.COMPLETED: DaemonJobAction.FINISHED,
    JobStatus.FAILED: DaemonJobAction.FAILED,
    JobStatus.CANCELLED: DaemonJobAction.CANCELLED,
}


class JobTracker:
    def __init__(self, host: DaemonHost) -> None:
        self.host = host
        self.active: set[uuid.UUID] = set()
        self._waiters: dict[uuid.UUID, list[asyncio.Future]] = {}
        self._cancel_reasons: dict[uuid.UUID, str | None] = {}
        self._launching = 0  # launches waiting for their job row: they count as active
        # Set while jobs are watched: the monitor sleeps on it instead of polling an empty
        # set twice a second (a thousand idle daemons of a threads worker: a third of its CPU).
        self._watching = asyncio.Event()

    def _watch(self, job_id: uuid.UUID) -> None:
        self.active.add(job_id)
        self._watching.set()

    async def until_watching(self) -> None:
        """Return once at least one job is watched."""
        while not self.active:
            self._watching.clear()
            await self._watching.wait()

    async def launch(
        self, job_type: str, metadata: dict, reason: str | None, limit: int | None = None
    ) -> uuid.UUID:
        if limit is not None and len(self.active) + self._launching >= limit:
            raise JobLimitReached(
                f"{len(self.active) + self._launching} jobs pending or running, the daemon's "
                f"max_active_jobs is {limit}"
            )
        self._launching += 1
        try:
            job = await self.host.call_db(
                _create_job, self.host.daemon_id, self.host.generation, job_type, metadata
            )
        finally:
            self._launching -= 1
        job_id = uuid.UUID(job["id"])
        self._watch(job_id)
        await self._record(job_id, DaemonJobAction.LAUNCHED, reason or f"launched {job_type} job")
        return job_id

    async def wait(self, job_id: uuid.UUID, timeout: float | None = None) -> dict:
        if job_id not in self.active:
            self._watch(job_id)
            await self._record(job_id, DaemonJobAction.MONITORED, "monitoring")
        future = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(job_id, []).append(future)
        async with asyncio.timeout(timeout):  # not wait_for: see BaseDaemon.sleep
            return await future

    async def cancel(self, job_id: uuid.UUID, reason: str | None) -> dict:
        self._cancel_reasons[job_id] = reason
        self._watch(job_id)
        job = await self.host.call_db(_cancel_job, job_id, reason)
        return job

    async def adopt(self) -> list[uuid.UUID]:
        """Take over the unfinished jobs an earlier instance of this daemon launched."""
        jobs = await self.host.call_db(_unrecorded_jobs, self.host.daemon_id)
        for job in jobs:
            job_id = uuid.UUID(job["id"])
            self._watch(job_id)
            if not JobStatus(job["status"]).is_terminal:
                await self._record(job_id, DaemonJobAction.MONITORED, "re-adopted after restart")
        return [uuid.UUID(job["id"]) for job in jobs]

    async def poll(self) -> None:
        """Record the outcome of every watched job that has ended."""
        if not self.active:
            return
        jobs = await self.host.call_db(_fetch_jobs, list(self.active))
        for job in jobs:
            if JobStatus(job["status"]).is_terminal:
                await self._finish(job)

    async def _finish(self, job: dict) -> None:
        job_id = uuid.UUID(job["id"])
        status = JobStatus(job["status"])
        await self._record(job_id, OUTCOME_ACTIONS[status], self._outcome(job_id, job))
        self.active.discard(job_id)
        for future in self._waiters.pop(job_id, []):
            if not future.done():
                future.set_result(job)

    def _outcome(self, job_id: uuid.UUID, job: dict) -> str:
        status = job["status"]
        if status == JobStatus.COMPLETED:
            return f"completed: {job['result']}" if job["result"] is not None else "completed"
        if status == JobStatus.FAILED:
            return f"failed: {job['error']}"
        return f"cancelled: {self._cancel_reasons.get(job_id) or job['message'] or 'on request'}"

    async def _record(self, job_id: uuid.UUID, action: DaemonJobAction, reason: str) -> None:
        await self.host.call_db(
            record_job_action, self.host.daemon_id, self.host.generation, job_id, action, reason
        )


def _create_job(daemon_id: uuid.UUID, generation: int, job_type: str, metadata: dict) -> dict:
    with db.engine.begin() as conn:
        # Refuse (Fenced) before creating anything if this instance was superseded.
        hold_generation(conn, daemon_id, generation)
    return job_to_dict(job_service.create_job(job_type, metadata, daemon_id=daemon_id))


def _cancel_job(job_id: uuid.UUID, reason: str | None) -> dict:
    return job_to_dict(job_service.cancel_job(job_id, reason))


def _fetch_jobs(job_ids: list[uuid.UUID]) -> list[dict]:
    return [job_to_dict(job) for job in db.session.scalars(select(Job).where(Job.id.in_(job_ids)))]


def _unrecorded_jobs(daemon_id: uuid.UUID) -> list[dict]:
    """This daemon's jobs whose outcome is not yet in its history."""
    terminal = exists().where(
        DaemonJobHistory.job_id == Job.id, DaemonJobHistory.action.in_(TERMINAL_ACTIONS)
    )
    query = select(Job).where(Job.daemon_id == daemon_id, ~terminal).order_by(Job.created_at)
    return [job_to_dict(job) for job in db.session.scalars(query)]
