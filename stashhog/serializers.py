"""Rows as JSON-ready dicts: one shape per entity, shared by REST, events and the CLI."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from stashhog.models import Daemon, DaemonJobHistory, DaemonLog, Job


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


# What an operator edits: an edit sent with If-Match a stale ETag of these is refused (412).
# Not updated_at, which every heartbeat moves.
SETTINGS_FIELDS = (
    "name", "enabled", "auto_start", "configuration", "restart_policy", "max_restarts",
    "restart_window", "log_max_lines", "log_max_age_days", "max_memory_mb", "max_cpu_percent",
    "limit_action", "depends_on",
)  # fmt: skip


def settings_etag(daemon: dict[str, Any]) -> str:
    """A strong ETag of the daemon's editable state (name, settings, configuration)."""
    state = json.dumps([daemon[field] for field in SETTINGS_FIELDS], sort_keys=True, default=str)
    return '"' + hashlib.sha256(state.encode()).hexdigest()[:20] + '"'


def daemon_to_dict(daemon: Daemon) -> dict[str, Any]:
    data = _daemon_fields(daemon)
    data["etag"] = settings_etag(data)
    return data


def _daemon_fields(daemon: Daemon) -> dict[str, Any]:
    # Here, not at the top: the daemon types import the job registry, which imports this.
    from stashhog.daemons.registry import shown_configuration

    return {
        "id": str(daemon.id),
        "name": daemon.name,
        "type": daemon.type,
        "enabled": daemon.enabled,
        "auto_start": daemon.auto_start,
        "status": daemon.status,
        "desired_state": daemon.desired_state,
        "configuration": shown_configuration(daemon.type, daemon.configuration or {}),
        "started_at": iso(daemon.started_at),
        "stopped_at": iso(daemon.stopped_at),
        "last_heartbeat": iso(daemon.last_heartbeat),
        "status_line": daemon.status_line,
        "last_error": daemon.last_error,
        "log_lines_dropped": daemon.log_lines_dropped or 0,
        "generation": daemon.generation,
        "task_id": daemon.task_id,
        "worker": daemon.worker,
        "worker_pid": daemon.worker_pid,
        "restart_policy": daemon.restart_policy,
        "max_restarts": daemon.max_restarts,
        "restart_window": daemon.restart_window,
        "restart_count": daemon.restart_count,
        "log_max_lines": daemon.log_max_lines,
        "log_max_age_days": daemon.log_max_age_days,
        "max_memory_mb": daemon.max_memory_mb,
        "max_cpu_percent": daemon.max_cpu_percent,
        "limit_action": daemon.limit_action,
        "depends_on": list(daemon.depends_on or []),
        "created_at": iso(daemon.created_at),
        "updated_at": iso(daemon.updated_at),
    }


def log_to_dict(log: DaemonLog) -> dict[str, Any]:
    return log_line_to_dict(log.id, log.daemon_id, log.generation, log)


def log_line_to_dict(log_id: int, daemon_id: object, generation: int | None, line: Any) -> dict:
    """The one shape of a log line; ``line`` has ``level``, ``message``, ``created_at`` and
    ``seq`` (a stored row, or a line the runtime has just written and knows the id of)."""
    return {
        "id": log_id,
        "daemon_id": str(daemon_id),
        "level": line.level,
        "message": line.message,
        "created_at": iso(line.created_at),
        "generation": generation,
        "seq": line.seq,
    }


def history_to_dict(entry: DaemonJobHistory, job: Job | None = None) -> dict[str, Any]:
    return {
        "id": str(entry.id),
        "daemon_id": str(entry.daemon_id),
        "job_id": str(entry.job_id) if entry.job_id else None,
        "action": entry.action,
        "reason": entry.reason,
        "created_at": iso(entry.created_at),
        "job_type": job.type if job else None,
        "job_status": job.status if job else None,
    }


def job_to_dict(job: Job) -> dict[str, Any]:
    return {
        "id": str(job.id),
        "type": job.type,
        "status": job.status,
        "progress": job.progress,
        "message": job.message,
        "result": job.result,
        "error": job.error,
        "metadata": job.job_metadata or {},
        "celery_task_id": job.celery_task_id,
        "daemon_id": str(job.daemon_id) if job.daemon_id else None,
        "created_at": iso(job.created_at),
        "started_at": iso(job.started_at),
        "completed_at": iso(job.completed_at),
        "updated_at": iso(job.updated_at),
    }
