"""What is wrong right now: each enabled rule, checked against the daemon rows the supervisor
pass has already read plus at most three bounded queries (ERROR lines in the window, through
the partial index of ERROR lines; ended jobs in the window, through the status index; the
current runs' latest samples)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import func, select

from stashhog.extensions import db
from stashhog.models import DaemonLog, DaemonStatus, DesiredState, Job, JobStatus, JobType
from stashhog.models.enums import JOB_ENDED_STATES, RUNNING_STATES
from stashhog.observability.metrics import latest_samples
from stashhog.observability.rules import Rule

logs = DaemonLog.__table__
jobs = Job.__table__
MIN_ENDED_JOBS = 5
MB = 1024 * 1024


@dataclass(frozen=True)
class Condition:
    rule: str
    subject: str
    daemon_id: UUID | None
    message: str
    value: float | None = None


def current_conditions(rules: dict[str, Rule], rows: list[Any], now: datetime) -> list[Condition]:
    found: list[Condition] = []
    on = {name for name, rule in rules.items() if rule.enabled}
    for row in rows:
        found += _daemon_conditions(rules, on, row, now)
    if "error_lines" in on:
        found += _error_lines(rules["error_lines"], rows, now)
    if "memory_high" in on:
        found += _memory(rules["memory_high"], rows)
    if "job_failure_rate" in on:
        found += _job_failures(rules["job_failure_rate"], now)
    return found


def _daemon_conditions(rules, on: set[str], row: Any, now: datetime) -> list[Condition]:
    found, subject = [], f"daemon:{row.id}"
    if row.status == DaemonStatus.ERROR:
        if "daemon_error" in on:
            lines = (row.last_error or "").strip().splitlines()
            error = lines[-1] if lines else "no error text"
            found.append(
                Condition("daemon_error", subject, row.id, f"{row.name} is ERROR: {error}")
            )
        spent = row.desired_state == DesiredState.STOPPED and row.restart_count >= row.max_restarts
        if "restart_budget_spent" in on and spent and row.restart_policy != "never":
            found.append(Condition("restart_budget_spent", subject, row.id,
                                   f"{row.name} spent its restart budget ({row.max_restarts})",
                                   row.restart_count))  # fmt: skip
    late = rules["heartbeat_late"]
    should_run = row.desired_state == DesiredState.RUNNING and row.status in RUNNING_STATES
    if "heartbeat_late" in on and should_run:
        seen = row.last_heartbeat or row.updated_at
        age = (now - seen).total_seconds()
        if age > late.threshold:
            found.append(Condition("heartbeat_late", subject, row.id,
                                   f"{row.name}: no heartbeat for {age:.0f}s", age))  # fmt: skip
    return found


def _error_lines(rule: Rule, rows: list[Any], now: datetime) -> list[Condition]:
    since = now - timedelta(seconds=rule.window)
    query = (
        select(logs.c.daemon_id, func.count())
        .where(logs.c.level == "ERROR", logs.c.created_at >= since)
        .group_by(logs.c.daemon_id)
    )
    with db.engine.connect() as conn:
        counts = dict(conn.execute(query).all())
    names = {row.id: row.name for row in rows}
    return [
        Condition(
            "error_lines",
            f"daemon:{daemon_id}",
            daemon_id,
            f"{names.get(daemon_id, daemon_id)}: {count} ERROR lines in "
            f"{rule.window}s (over {rule.threshold:g})",
            count,
        )  # fmt: skip
        for daemon_id, count in counts.items()
        if count > rule.threshold and daemon_id in names
    ]


def _memory(rule: Rule, rows: list[Any]) -> list[Condition]:
    samples = latest_samples()
    found = []
    for row in rows:
        rss = (samples.get(str(row.id)) or {}).get("rss")
        if row.status == DaemonStatus.RUNNING and rss and rss / MB > rule.threshold:
            found.append(Condition("memory_high", f"daemon:{row.id}", row.id,
                                   f"{row.name}: {rss / MB:.0f} MB RSS (over "
                                   f"{rule.threshold:g} MB)", rss / MB))  # fmt: skip
    return found


def _job_failures(rule: Rule, now: datetime) -> list[Condition]:
    since = now - timedelta(seconds=rule.window)
    query = (
        select(jobs.c.status, func.count())
        .where(jobs.c.status.in_([str(s) for s in JOB_ENDED_STATES]))
        .where(jobs.c.created_at >= since, jobs.c.type != JobType.ALERT_NOTIFY)
        .group_by(jobs.c.status)
    )
    with db.engine.connect() as conn:
        counts = dict(conn.execute(query).all())
    ended = sum(counts.values())
    failed = counts.get(JobStatus.FAILED, 0)
    if ended < MIN_ENDED_JOBS or 100 * failed / ended <= rule.threshold:
        return []
    rate = 100 * failed / ended
    return [Condition("job_failure_rate", "jobs", None,
                      f"{rate:.0f}% of {ended} jobs failed in {rule.window}s", rate)]  # fmt: skip
