"""``/metrics`` in the Prometheus text format: a custom collector that reads PostgreSQL and
Redis at scrape time, so every web process answers the same numbers. The queries are
bounded: one row per daemon, runs counted per daemon, jobs grouped by type and status, one
Redis pipeline for the log counters and queue lengths; the workers come from the health
check's cached broadcast (at most one every 2 s per process)."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CollectorRegistry, CounterMetricFamily, GaugeMetricFamily
from sqlalchemy import func, select

from stashhog.events import get_redis
from stashhog.extensions import db
from stashhog.models import DaemonRun, DaemonStatus, Job
from stashhog.observability.counters import log_line_counts
from stashhog.observability.metrics import latest_samples
from stashhog.services.daemon_queries import list_daemons
from stashhog.services.health import worker_inspection

LABELS = ["daemon", "daemon_id"]
QUEUES = ("daemons", "jobs", "supervisor")


class StashHogCollector:
    def collect(self):
        daemons = list_daemons()
        yield from daemon_metrics(daemons)
        yield from run_and_log_metrics(daemons)
        yield from job_metrics()
        yield from queue_metrics()


def _gauge(name: str, doc: str, labels=LABELS) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"stashhog_{name}", doc, labels=labels)


def daemon_metrics(daemons: list[dict]):
    now = datetime.now(UTC)
    up = _gauge("daemon_up", "1 if the daemon is healthy (running with a live heartbeat).")
    status = _gauge("daemon_status", "1 for the daemon's current status.", [*LABELS, "status"])
    desired = _gauge("daemon_desired_running", "1 if the operator wants it running.")
    age = _gauge("daemon_heartbeat_age_seconds", "Seconds since the last heartbeat.")
    restarts = _gauge("daemon_restarts", "Crash restarts counted against the budget now.")
    dropped = _gauge("daemon_log_lines_dropped", "Log lines the current run lost.")
    cpu = _gauge("daemon_cpu_percent", "CPU of the current instance, % of one core.")
    rss = _gauge("daemon_rss_bytes", "Resident memory of the current instance.")
    samples = latest_samples()
    for d in daemons:
        labels = [d["name"], d["id"]]
        up.add_metric(labels, 1 if d["health"] == "healthy" else 0)
        for value in DaemonStatus:
            status.add_metric([*labels, value], 1 if d["status"] == value else 0)
        desired.add_metric(labels, 1 if d["desired_state"] == "RUNNING" else 0)
        if d["last_heartbeat"]:
            seen = datetime.fromisoformat(d["last_heartbeat"])
            age.add_metric(labels, (now - seen).total_seconds())
        restarts.add_metric(labels, d["restart_count"])
        dropped.add_metric(labels, d["log_lines_dropped"])
        sample = samples.get(d["id"])
        if sample and d["status"] == DaemonStatus.RUNNING and sample["rss"] is not None:
            cpu.add_metric(labels, sample["cpu_percent"] or 0)
            rss.add_metric(labels, sample["rss"])
    yield from (up, status, desired, age, restarts, dropped, cpu, rss)


def run_and_log_metrics(daemons: list[dict]):
    runs = DaemonRun.__table__
    with db.engine.connect() as conn:
        query = select(runs.c.daemon_id, func.count()).group_by(runs.c.daemon_id)
        counts = {str(daemon_id): n for daemon_id, n in conn.execute(query).all()}
    total = CounterMetricFamily("stashhog_daemon_runs", "Runs (instances) recorded.", labels=LABELS)
    lines = CounterMetricFamily("stashhog_daemon_log_lines", "Log lines stored, by level.",
                                labels=[*LABELS, "level"])  # fmt: skip
    by_level = log_line_counts([d["id"] for d in daemons])
    for d in daemons:
        labels = [d["name"], d["id"]]
        total.add_metric(labels, counts.get(d["id"], 0))
        for level, count in sorted(by_level[d["id"]].items()):
            lines.add_metric([*labels, level], count)
    yield from (total, lines)


def job_metrics():
    jobs = Job.__table__
    query = select(jobs.c.type, jobs.c.status, func.count()).group_by(jobs.c.type, jobs.c.status)
    family = _gauge("jobs", "Jobs kept (see JOB_MAX_AGE_DAYS), by type and status.",
                    ["type", "status"])  # fmt: skip
    with db.engine.connect() as conn:
        for job_type, status, count in conn.execute(query):
            family.add_metric([job_type, status], count)
    yield family


def queue_metrics():
    pipe = get_redis().pipeline(transaction=False)
    for name in QUEUES:
        pipe.llen(name)
    lengths = _gauge("queue_length", "Messages waiting in the Celery queue.", ["queue"])
    for name, length in zip(QUEUES, pipe.execute(), strict=True):
        lengths.add_metric([name], length)
    workers = _gauge("queue_workers", "Workers seen consuming the queue.", ["queue"])
    try:
        seen = worker_inspection().workers_by_queue()
    except Exception:
        seen = {}
    for name in QUEUES:
        workers.add_metric([name], len(seen.get(name, [])))
    yield from (lengths, workers)


def metrics_response() -> Response:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StashHogCollector())
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
