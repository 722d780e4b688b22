"""The database schema: PostgreSQL in production, SQLite as the embedded default."""

# The media library's table (media_files) lives with the rest of the media code; a module
# import, so importing stashhog.media.models first (which imports this package) works too.
import stashhog.auth.models  # noqa: F401  (users, api_tokens, audit_events)
import stashhog.media.models  # noqa: F401
from stashhog.models.cluster import ClusterState
from stashhog.models.daemon import Daemon, DaemonJobHistory, DaemonLog
from stashhog.models.enums import (
    DaemonJobAction,
    DaemonStatus,
    DaemonType,
    DesiredState,
    JobStatus,
    JobType,
    LimitAction,
    LogLevel,
    RestartPolicy,
)
from stashhog.models.job import Job
from stashhog.models.observability import (
    Alert,
    AlertChannel,
    AlertDelivery,
    AlertRule,
    DaemonMetric,
    DaemonRun,
)

__all__ = [
    "Alert",
    "AlertChannel",
    "AlertDelivery",
    "AlertRule",
    "DaemonMetric",
    "DaemonRun",
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
    "LimitAction",
    "RestartPolicy",
]
