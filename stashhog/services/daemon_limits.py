"""Resource limits per daemon: ``max_memory_mb`` (RSS of the daemon's own process) and
``max_cpu_percent`` (averaged over the last ``CPU_WINDOW`` samples), and ``limit_action`` on a
breach: ``restart`` (as a crash: ERROR, then the supervisor's restart policy and budget),
``stop`` (STOPPED, desired STOPPED) or ``warn`` (a log line and an event, once a minute).

Two enforcers read the same rule (``find_breach``). The runtime checks every sample it takes
(``workers/limits.py``). The supervisor checks the stored samples (``enforce``), for a runtime
that does not act: stuck in C code or with its event loop blocked, it writes no newer sample,
and after ``GRACE_SAMPLES`` sample intervals on the supervisor's own clock the supervisor kills
the process (SIGKILL, as for a stop that overran) and applies the action itself.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import psutil
from flask import current_app
from pydantic import Field, StrictFloat, StrictInt
from sqlalchemy import BigInteger, Float, Uuid, column, select, text
from sqlalchemy.engine import Row

from stashhog.control import send_kill
from stashhog.events import EventType, get_redis, key, publish
from stashhog.extensions import db
from stashhog.models import DaemonMetric, DaemonStatus, DesiredState, LimitAction, LogLevel
from stashhog.models.enums import RunOutcome
from stashhog.observability import runs
from stashhog.services.daemon_state import change_daemon

MB = 1024 * 1024
MIN_MEMORY_MB = 16
MAX_MEMORY_MB = 1024 * 1024  # 1 TB
# The CPU share of one core is 100 %; a process can use every core of the host.
MAX_CPU_PERCENT = 100.0 * (psutil.cpu_count() or 1)
# CPU % is the mean of this many consecutive samples (15 s at the default METRICS_INTERVAL).
CPU_WINDOW = 3
# The supervisor acts on a breaching sample no newer sample followed for this many intervals.
GRACE_SAMPLES = 2
WARN_EVERY = 60.0  # seconds between two warnings of one daemon's breach
LIMIT_SETTINGS = ("max_memory_mb", "max_cpu_percent", "limit_action")
# The bounds of the two limits, for the settings schema and the API's update body alike.
MemoryMB = Annotated[StrictInt, Field(ge=MIN_MEMORY_MB, le=MAX_MEMORY_MB)]
CpuPercent = Annotated[StrictFloat, Field(gt=0, le=MAX_CPU_PERCENT)]
metrics = DaemonMetric.__table__


@dataclass(frozen=True)
class Breach:
    limit: str  # "max_memory_mb" or "max_cpu_percent"
    measured: float  # MB, or CPU %
    threshold: float
    action: str  # a LimitAction value
    by: str = "runtime"  # who enforces it: "runtime", or "supervisor" (the runtime did not)

    @property
    def message(self) -> str:
        if self.limit == "max_memory_mb":
            what = f"memory limit exceeded: RSS {self.measured:.0f} MB"
        else:
            what = f"CPU limit exceeded: {self.measured:.0f} % over the last {CPU_WINDOW} samples"
        # The action is named as limit_action=...: a stop's reason must not read as a restart.
        by = "; enforced by the supervisor" if self.by == "supervisor" else ""
        return f"{what} > {self.limit} {self.threshold:g} (limit_action={self.action}{by})"

    def event(self) -> dict[str, Any]:
        return {"limit": self.limit, "measured": round(self.measured, 1),
                "threshold": self.threshold, "action": self.action,
                "by": self.by, "message": self.message}  # fmt: skip


def limits_of(row: Any) -> tuple[int | None, float | None, str]:
    """(max_memory_mb, max_cpu_percent, limit_action) of a row or a daemon dict."""
    get = row.get if isinstance(row, dict) else lambda name: getattr(row, name, None)
    return get("max_memory_mb"), get("max_cpu_percent"), get("limit_action") or LimitAction.RESTART


def has_limits(row: Any) -> bool:
    memory, cpu, _action = limits_of(row)
    return memory is not None or cpu is not None


def find_breach(row: Any, samples: list[dict]) -> Breach | None:
    """The limit ``samples`` (oldest first, of one instance) break, judged on the newest:
    its RSS, or the mean CPU of the last CPU_WINDOW samples (none until there are that many)."""
    memory, cpu, action = limits_of(row)
    if not samples:
        return None
    rss_mb = samples[-1]["rss"] / MB
    if memory is not None and rss_mb > memory:
        return Breach("max_memory_mb", rss_mb, memory, action)
    window = samples[-CPU_WINDOW:]
    if cpu is not None and len(window) == CPU_WINDOW:
        mean = sum(sample["cpu_percent"] for sample in window) / CPU_WINDOW
        if mean > cpu:
            return Breach("max_cpu_percent", mean, cpu, action)
    return None


def publish_breach(daemon_id: Any, breach: Breach) -> None:
    """The ``daemon_limit`` event: which limit, the measured value, the action, who acted."""
    publish(EventType.DAEMON_LIMIT, daemon_id, **breach.event())


# -- the supervisor's side -------------------------------------------------------------------


def enforce(row: Row, alive: bool, now: datetime, note, latest: list[dict] | None = None) -> bool:
    """Act on a RUNNING instance's breach its runtime did not answer: no newer sample for
    the grace while its lease lives, or its lease expired (a loop blocked past LEASE_TTL
    renews none) with its process perhaps still holding the memory. ``note(row, level,
    message)`` writes the supervisor's log line; ``latest``: its samples, as
    ``latest_samples`` read them for the whole pass (else read here). True when it acted."""
    if row.status != DaemonStatus.RUNNING or not has_limits(row):
        return False
    if latest is None:
        latest = _latest_samples(row)
    breach = find_breach(row, latest)
    if breach is None or (alive and not _unanswered(row, latest[-1]["id"], now)):
        return False
    if not alive and breach.action == LimitAction.WARN:
        return False  # the lease expired: a new instance is started as for any lost worker
    breach = dataclasses.replace(breach, by="supervisor")
    if breach.action == LimitAction.WARN:
        if _may_warn(row):
            note(row, LogLevel.WARNING, f"{breach.message}; its runtime has written no "
                 "sample since (event loop blocked?)")  # fmt: skip
            publish_breach(row.id, breach)
        return False
    note(row, LogLevel.ERROR, f"{breach.message}; its runtime did not act: killing it (SIGKILL)")
    publish_breach(row.id, breach)
    kill_for_limit(row, breach.message, breach.action)
    return True


def kill_for_limit(row: Row, reason: str, action: str) -> None:
    """SIGKILL the instance, end its run with ``reason``, and fence its generation: ERROR for
    a restart (the supervisor's crash restarts and budget then apply), else STOPPED."""
    if row.worker and row.worker_pid:
        send_kill(row.worker, row.worker_pid)
    runs.close_run(row.id, row.generation, RunOutcome.KILLED, error=reason)
    values: dict[str, Any] = {"status": DaemonStatus.ERROR, "last_error": reason}
    if action == LimitAction.STOP:
        values = {"status": DaemonStatus.STOPPED, "desired_state": DesiredState.STOPPED,
                  "last_error": reason}  # fmt: skip
    change_daemon(row.id, if_generation=row.generation, generation=row.generation + 1,
                  status_line=reason, stopped_at=datetime.now(UTC), worker_pid=None,
                  **values)  # fmt: skip


def enforced(rows: list[Row]) -> list[Row]:
    """The rows ``enforce`` reads samples of: RUNNING, desired RUNNING, with a limit."""
    return [row for row in rows if row.status == DaemonStatus.RUNNING
            and row.desired_state == DesiredState.RUNNING and has_limits(row)]  # fmt: skip


def latest_samples(rows: list[Row]) -> dict[Any, list[dict]]:
    """``_latest_samples`` of every row (by id) in one query: on PostgreSQL a LATERAL join
    (the newest CPU_WINDOW samples of each instance); elsewhere one query a row. A pass at
    1,000 limited daemons otherwise made 1,000 queries."""
    if not rows:
        return {}
    if db.engine.dialect.name != "postgresql":
        return {row.id: _latest_samples(row) for row in rows}
    params = {"ids": [str(row.id) for row in rows], "window": CPU_WINDOW,
              "generations": [row.generation for row in rows]}  # fmt: skip
    found: dict[Any, list[dict]] = {row.id: [] for row in rows}
    with db.engine.connect() as conn:
        for sample in conn.execute(_LATEST, params):
            found[sample.daemon_id].append(
                {"id": sample.id, "rss": sample.rss, "cpu_percent": sample.cpu_percent}
            )
    return found


# Arrays, not a VALUES list: SQLAlchemy compiled a 500-row VALUES afresh each pass (45 ms).
_LATEST = text("""
SELECT wanted.daemon_id, newest.id, newest.rss, newest.cpu_percent
FROM unnest(CAST(:ids AS uuid[]), CAST(:generations AS bigint[])) AS wanted(daemon_id, generation)
CROSS JOIN LATERAL (
    SELECT id, rss, cpu_percent FROM daemon_metrics
    WHERE daemon_id = wanted.daemon_id AND resolution = 0 AND generation = wanted.generation
    ORDER BY id DESC LIMIT :window
) AS newest
ORDER BY wanted.daemon_id, newest.id
""").columns(column("daemon_id", Uuid), column("id", BigInteger), column("rss", BigInteger),
             column("cpu_percent", Float))  # fmt: skip


def _samples_query(daemon_id: Any, generation: Any):
    return (
        select(metrics.c.id, metrics.c.rss, metrics.c.cpu_percent)
        .where(metrics.c.daemon_id == daemon_id, metrics.c.resolution == 0)
        .where(metrics.c.generation == generation)
        .order_by(metrics.c.id.desc())
        .limit(CPU_WINDOW)
    )


def _latest_samples(row: Row) -> list[dict]:
    query = _samples_query(row.id, row.generation)
    with db.engine.connect() as conn:
        return [dict(sample._mapping) for sample in reversed(conn.execute(query).all())]


def _unanswered(row: Row, sample_id: int, now: datetime) -> bool:
    """True once the breaching sample ``sample_id`` has stayed the newest for the grace, as
    this supervisor saw it (the database's clock: no worker's clock is compared)."""
    grace = timedelta(seconds=GRACE_SAMPLES * current_app.config["METRICS_INTERVAL"])
    redis, name = get_redis(), key("limits", row.id, "seen")
    seen = redis.get(name)
    if seen is not None:
        seen_id, _, seen_at = seen.decode().partition(" ")
        if seen_id == str(sample_id):
            return now - datetime.fromisoformat(seen_at) >= grace
    redis.set(name, f"{sample_id} {now.isoformat()}", px=int(grace.total_seconds() * 4000) + 60_000)
    return False


def _may_warn(row: Row) -> bool:
    return bool(get_redis().set(key("limits", row.id, "warned"), 1, nx=True, ex=int(WARN_EVERY)))
