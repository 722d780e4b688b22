"""MetadataGenerateWatcher: keeps watch over METADATA_GENERATE jobs and reports on them."""

from __future__ import annotations

from pydantic import Field
from sqlalchemy import func, select

from stashhog.daemons.base import BaseDaemon
from stashhog.daemons.config import DaemonConfig
from stashhog.daemons.registry import register
from stashhog.extensions import db
from stashhog.models import DaemonType, Job, JobType


class WatcherConfig(DaemonConfig):
    check_interval: float = Field(10, gt=0, le=3600, description="Seconds between checks.")


def count_jobs_by_status(job_type: str) -> dict[str, int]:
    query = select(Job.status, func.count()).where(Job.type == job_type).group_by(Job.status)
    return dict(db.session.execute(query).all())


@register(DaemonType.METADATA_GENERATE_WATCHER)
class MetadataGenerateWatcher(BaseDaemon):
    description = "Watches METADATA_GENERATE jobs and reports how many are queued or running."
    Config = WatcherConfig
    config: WatcherConfig

    async def run(self) -> None:
        await self.every(self.config.check_interval, self.check)

    async def check(self, iteration: int) -> None:
        counts = await self.host.call_db(count_jobs_by_status, JobType.METADATA_GENERATE)
        summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "no jobs"
        self.update_status(f"metadata jobs: {summary}")
        self.debug(f"check {iteration}: {summary}")
