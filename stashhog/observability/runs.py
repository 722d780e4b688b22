"""Runs: one record per daemon instance (generation), opened when the instance claims its
row and closed with how it ended. The runtime closes its own run; the supervisor closes the
runs of instances that cannot (worker lost, killed after the stop timeout)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from stashhog.extensions import db
from stashhog.models import DaemonRun
from stashhog.models.enums import RunOutcome
from stashhog.serializers import iso

runs = DaemonRun.__table__


def open_run(daemon_id: uuid.UUID, generation: int, worker: str | None, pid: int | None) -> None:
    """Record the start of ``generation``. Older runs still open never got an end of their
    own: their instance was replaced (the lease it held is gone), so they count as
    restarted."""
    now = datetime.now(UTC)
    with db.engine.begin() as conn:
        conn.execute(
            update(runs)
            .where(runs.c.daemon_id == daemon_id, runs.c.generation < generation)
            .where(runs.c.stopped_at.is_(None))
            .values(stopped_at=now, outcome=RunOutcome.RESTARTED)
        )
        exists = select(runs.c.id).where(
            runs.c.daemon_id == daemon_id, runs.c.generation == generation
        )
        if conn.execute(exists).first() is None:
            conn.execute(
                insert(runs).values(
                    daemon_id=daemon_id,
                    generation=generation,
                    started_at=now,
                    worker=worker,
                    pid=pid,
                )  # fmt: skip
            )


def close_run(
    daemon_id: uuid.UUID | str,
    generation: int,
    outcome: RunOutcome | str,
    *,
    error: str | None = None,
    conn: Connection | None = None,
    **counts: int,
) -> bool:
    """End the run (if it is still open) with ``outcome``; ``counts`` are lines_logged and
    lines_dropped. False when it was closed already. Given ``conn``, in its transaction."""
    stmt = (
        update(runs)
        .where(runs.c.daemon_id == _uuid(daemon_id), runs.c.generation == generation)
        .where(runs.c.stopped_at.is_(None))
        .values(stopped_at=datetime.now(UTC), outcome=str(outcome), error=error, **counts)
    )
    if conn is not None:
        return conn.execute(stmt).rowcount > 0
    with db.engine.begin() as own:
        return own.execute(stmt).rowcount > 0


def list_runs(daemon_id: uuid.UUID, limit: int = 50) -> list[dict[str, Any]]:
    """The daemon's runs, newest first."""
    query = select(runs).where(runs.c.daemon_id == daemon_id).order_by(runs.c.generation.desc())
    with db.engine.connect() as conn:
        return [run_to_dict(row) for row in conn.execute(query.limit(limit))]


def run_to_dict(row: Any) -> dict[str, Any]:
    ended = row.stopped_at or datetime.now(UTC)
    return {
        "id": row.id,
        "daemon_id": str(row.daemon_id),
        "generation": row.generation,
        "started_at": iso(row.started_at),
        "stopped_at": iso(row.stopped_at),
        "duration_seconds": round((ended - row.started_at).total_seconds(), 3),
        "worker": row.worker,
        "pid": row.pid,
        "outcome": row.outcome,
        "error": row.error,
        "lines_logged": row.lines_logged,
        "lines_dropped": row.lines_dropped,
        "peak_rss": row.peak_rss,
        "cpu_percent": row.cpu_percent,
        "rss": row.rss,
    }


def _uuid(value: uuid.UUID | str) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
