"""The database schema: PostgreSQL in production, SQLite as the embedded default."""

from stashhog.models.cluster import ClusterState
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
    "ClusterState",
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
