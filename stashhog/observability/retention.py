"""Retention: log lines past each daemon's caps (``log_max_lines``, ``log_max_age_days``, else
the global LOG_MAX_LINES / LOG_MAX_AGE_DAYS), ended jobs, finished runs, resolved alerts and
metrics past their windows.

Run by beat every PRUNE_INTERVAL (under a Redis lock) and by ``flask daemons prune``. Every
DELETE removes at most PRUNE_BATCH rows by primary key in a transaction of its own, so no
lock is held for long and the log flusher's inserts (new ids, at the other end of the index)
never wait; a pass stops after PRUNE_PASS_SECONDS and the next one goes on. The log cut-offs
are found through the (daemon_id, id) index: the id of the newest line to drop.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta

from flask import current_app
from sqlalchemy import delete, func, select

from stashhog.events import get_redis, key
from stashhog.extensions import db
from stashhog.models import Alert, Daemon, DaemonLog, DaemonMetric, DaemonRun, Job
from stashhog.models.enums import JOB_ENDED_STATES
from stashhog.observability.metrics import ROLLUP, roll_up
from stashhog.services.daemon_logs import write_supervisor_log

logs, daemons, jobs = DaemonLog.__table__, Daemon.__table__, Job.__table__
metrics, runs, alerts = DaemonMetric.__table__, DaemonRun.__table__, Alert.__table__


def prune(now: datetime | None = None, *, budget: float | None = None) -> Counter | None:
    """One pass; the counts pruned per table (logs also per daemon name). None when another
    pass holds the lock."""
    lock = get_redis().lock(key("retention", "lock"), timeout=60, blocking=False)
    if not lock.acquire():
        return None
    try:
        config = current_app.config
        now = now or datetime.now(UTC)
        deadline = time.monotonic() + (budget or config["PRUNE_PASS_SECONDS"])
        counts: Counter = Counter()
        roll_up(now)
        for row in _daemon_caps():
            pruned = prune_daemon_logs(row, now, deadline)
            if pruned:
                counts["daemon_logs"] += pruned
                counts[f"daemon_logs:{row.name}"] = pruned
                write_supervisor_log(row.id, "INFO", f"supervisor: retention pruned {pruned} "
                                     "log lines")  # fmt: skip
        counts.update(_prune_tables(now, deadline))
        return counts
    finally:
        lock.release()


def _daemon_caps():
    with db.engine.connect() as conn:
        return conn.execute(
            select(
                daemons.c.id, daemons.c.name, daemons.c.log_max_lines, daemons.c.log_max_age_days
            )  # fmt: skip
        ).all()


def prune_daemon_logs(row, now: datetime, deadline: float) -> int:
    config = current_app.config
    max_lines = row.log_max_lines or config["LOG_MAX_LINES"]
    before = now - timedelta(days=row.log_max_age_days or config["LOG_MAX_AGE_DAYS"])
    total = _delete_through(row.id, _line_cap_cutoff(row.id, max_lines), deadline)
    while time.monotonic() < deadline:  # the age cut-off is found a batch at a time
        pruned = _delete_through(row.id, _age_cutoff(row.id, before), deadline)
        total += pruned
        if pruned < config["PRUNE_BATCH"]:
            break
    return total


def _delete_through(daemon_id, cutoff: int | None, deadline: float) -> int:
    if cutoff is None:
        return 0
    where = (logs.c.daemon_id == daemon_id) & (logs.c.id <= cutoff)
    return _delete_in_batches(logs, logs.c.id, where, deadline)


def _line_cap_cutoff(daemon_id, max_lines: int) -> int | None:
    """The id of the newest line past the cap (an index-only walk of max_lines entries)."""
    query = (
        select(logs.c.id).where(logs.c.daemon_id == daemon_id)
        .order_by(logs.c.id.desc()).offset(max_lines).limit(1)
    )  # fmt: skip
    with db.engine.connect() as conn:
        return conn.execute(query).scalar()


def _age_cutoff(daemon_id, before: datetime) -> int | None:
    """The newest too-old id among the oldest PRUNE_BATCH lines: ids follow time, so older
    ones are first, and the walk is bounded even when nothing is old."""
    oldest = (
        select(logs.c.id, logs.c.created_at).where(logs.c.daemon_id == daemon_id)
        .order_by(logs.c.id).limit(current_app.config["PRUNE_BATCH"]).subquery()
    )  # fmt: skip
    with db.engine.connect() as conn:
        return conn.execute(
            select(func.max(oldest.c.id)).where(oldest.c.created_at < before)
        ).scalar()


def _delete_in_batches(table, id_column, where, deadline: float) -> int:
    batch = current_app.config["PRUNE_BATCH"]
    total = 0
    while time.monotonic() < deadline:
        ids = select(id_column).where(where).order_by(id_column).limit(batch)
        with db.engine.begin() as conn:
            deleted = conn.execute(delete(table).where(id_column.in_(ids.scalar_subquery())))
        total += deleted.rowcount
        if deleted.rowcount < batch:
            break
    return total


def _prune_tables(now: datetime, deadline: float) -> Counter:
    config = current_app.config
    days = timedelta(days=1)
    raw_until = now - timedelta(hours=config["METRICS_RAW_HOURS"])
    rollups_until = now - days * config["METRICS_ROLLUP_DAYS"]
    ended = [str(status) for status in JOB_ENDED_STATES]
    plan = {
        "jobs": (jobs, jobs.c.id, jobs.c.status.in_(ended)
                 & (jobs.c.created_at < now - days * config["JOB_MAX_AGE_DAYS"])),
        "daemon_runs": (runs, runs.c.id, runs.c.stopped_at.is_not(None)
                        & (runs.c.stopped_at < now - days * config["RUN_MAX_AGE_DAYS"])),
        "alerts": (alerts, alerts.c.id, alerts.c.resolved_at.is_not(None)
                   & (alerts.c.resolved_at < now - days * config["ALERT_MAX_AGE_DAYS"])),
        "daemon_metrics": (metrics, metrics.c.id, (metrics.c.resolution == 0)
                           & (metrics.c.created_at < raw_until)),
        "daemon_metrics:rollups": (metrics, metrics.c.id, (metrics.c.resolution == ROLLUP)
                                   & (metrics.c.created_at < rollups_until)),
    }  # fmt: skip
    return Counter({name: _delete_in_batches(*args, deadline) for name, args in plan.items()})
