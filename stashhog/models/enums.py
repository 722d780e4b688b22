"""Lifecycles and vocabularies as ``str`` enums; their values are what the database stores."""

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


class DesiredState(StrEnum):
    """What the operator asked for; the supervisor drives ``status`` towards it."""

    RUNNING = "RUNNING"
    STOPPED = "STOPPED"


class RestartPolicy(StrEnum):
    ALWAYS = "always"
    ON_FAILURE = "on-failure"
    NEVER = "never"


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
        return self in {JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED}


class JobType(StrEnum):
    TEST = "TEST"
    METADATA_GENERATE = "METADATA_GENERATE"
