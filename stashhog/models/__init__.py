"""The database schema: PostgreSQL in production, SQLite as the embedded default."""

from stashhog.models.daemon import Daemon, DaemonJobHistory, DaemonLog
from stashhog.models.enums import (
    DaemonJobAction,
    DaemonStatus,
    DaemonType,
    DesiredState,
    JobStatus,
    JobType,
    LogLevel,
    RestartPolicy,
)
from stashhog.models.job import Job

__all__ = [
    "Daemon",
    "DaemonJobAction",
    "DaemonJobHistory",
    "DaemonLog",
    "DaemonStatus",
    "DaemonType",
    "DesiredState",
    "Job",
    "JobStatus",
    "JobType",
    "LogLevel",
    "RestartPolicy",
]
