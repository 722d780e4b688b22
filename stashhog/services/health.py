"""Whole-system health: database, Redis, and Celery workers per queue."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from stashhog.celery_app import get_celery
from stashhog.events import get_redis
from stashhog.extensions import db

REQUIRED_QUEUES = ("daemons", "jobs")


def check_database() -> dict[str, Any]:
    try:
        db.session.execute(text("SELECT 1"))
        return {"ok": True, "dialect": db.engine.dialect.name}
    except Exception as exc:  # any driver error means "unreachable" here
        db.session.rollback()
        return {"ok": False, "error": str(exc).splitlines()[0]}


def check_redis() -> dict[str, Any]:
    try:
        get_redis().ping()
        return {"ok": True}
    except Exception as exc:
        return {"ok": False, "error": str(exc)}


def workers_by_queue(timeout: float = 1.0) -> dict[str, list[str]]:
    """Ask every worker which queues it consumes (Celery's broadcast inspect)."""
    replies = get_celery().control.inspect(timeout=timeout).active_queues() or {}
    queues: dict[str, list[str]] = {}
    for worker, consumed in replies.items():
        for queue in consumed:
            queues.setdefault(queue["name"], []).append(worker)
    return queues


def check_queues(redis_ok: bool) -> dict[str, Any]:
    if not redis_ok:
        return {
            name: {"ok": False, "workers": [], "error": "broker unreachable"}
            for name in REQUIRED_QUEUES
        }
    try:
        seen = workers_by_queue()
    except Exception as exc:
        return {name: {"ok": False, "workers": [], "error": str(exc)} for name in REQUIRED_QUEUES}
    return {
        name: {"ok": bool(seen.get(name)), "workers": sorted(seen.get(name, []))}
        | ({} if seen.get(name) else {"error": f"no worker consumes queue {name!r}"})
        for name in REQUIRED_QUEUES
    }


def system_health() -> dict[str, Any]:
    database = check_database()
    redis_state = check_redis()
    queues = check_queues(redis_state["ok"])
    failing = [
        name for name, part in (("database", database), ("redis", redis_state)) if not part["ok"]
    ]
    failing += [f"queue:{name}" for name, part in queues.items() if not part["ok"]]
    return {
        "status": "ok" if not failing else "unhealthy",
        "failing": failing,
        "database": database,
        "redis": redis_state,
        "queues": queues,
    }
