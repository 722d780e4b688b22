"""Lifecycles and vocabularies as ``str`` enums; their values are what the database stores.

Groups of statuses are named here once (as Supervisor's ``states.py`` does), so a rule such
as "an instance may still be alive" reads the same in the services, the supervisor and the
worker hooks.
"""

from enum import StrEnum


class DaemonType(StrEnum):
    TEST_DAEMON = "TEST_DAEMON"
    METADATA_GENERATE_WATCHER = "METADATA_GENERATE_WATCHER"


class DaemonStatus(StrEnum):
    STOPPED = "STOPPED"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    STOPPING = "STOPPING"
    ERROR = "ERROR"


# An instance runs or is about to: a stop must signal it.
RUNNING_STATES = frozenset({DaemonStatus.STARTING, DaemonStatus.RUNNING})
# An instance may still be alive, one that is stopping included.
LIVE_STATES = RUNNING_STATES | {DaemonStatus.STOPPING}
# No instance runs: where a stop, or a crash, ends.
STOPPED_STATES = frozenset({DaemonStatus.STOPPED, DaemonStatus.ERROR})
# Where a start settles: the instance runs, or it failed.
START_SETTLED_STATES = frozenset({DaemonStatus.RUNNING, DaemonStatus.ERROR})


class DesiredState(StrEnum):
    """What the operator asked for; the supervisor drives ``status`` towards it."""

    RUNNING = "RUNNING"
    STOPPED = "STOPPED"


class RestartPolicy(StrEnum):
    ALWAYS = "always"
    ON_FAILURE = "on-failure"
    NEVER = "never"


class LimitAction(StrEnum):
    """What a daemon's breach of max_memory_mb / max_cpu_percent does."""

    RESTART = "restart"
    STOP = "stop"
    WARN = "warn"


class LogLevel(StrEnum):
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"

    @classmethod
    def at_least(cls, level: "LogLevel | str") -> list[str]:
        """This level and every more severe one, e.g. WARNING -> [WARNING, ERROR]."""
        order = list(cls)
        return [lvl.value for lvl in order[order.index(cls(level)) :]]


class DaemonJobAction(StrEnum):
    LAUNCHED = "LAUNCHED"
    CANCELLED = "CANCELLED"
    MONITORED = "MONITORED"
    FINISHED = "FINISHED"
    FAILED = "FAILED"


class JobStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    CANCELLING = "cancelling"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in JOB_ENDED_STATES


# The job's handler runs (it may have been asked to cancel).
JOB_RUNNING_STATES = frozenset({JobStatus.RUNNING, JobStatus.CANCELLING})
# Final: the job never changes again.
JOB_ENDED_STATES = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED})


class JobType(StrEnum):
    TEST = "TEST"
    METADATA_GENERATE = "METADATA_GENERATE"
    ALERT_NOTIFY = "ALERT_NOTIFY"


class RunOutcome(StrEnum):
    """How a run (one instance) ended."""

    STOPPED = "stopped"
    RETURNED = "returned"
    CRASHED = "crashed"
    FENCED = "fenced"
    WORKER_LOST = "worker_lost"
    RESTARTED = "restarted"
    KILLED = "killed"


class AlertStatus(StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"
