"""Process metrics of running daemons: samples written with the heartbeat, minute rollups
for longer ranges, and the series the API and the charts read.

``daemon_metrics`` keeps every sample (``resolution`` 0) for ``METRICS_RAW_HOURS`` and a
rollup per minute (``resolution`` 60: mean CPU, peak RSS) for ``METRICS_ROLLUP_DAYS``; a
range is answered from the finest data that covers it, in buckets that give it a few hundred
points.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select, update

from stashhog.errors import Invalid
from stashhog.extensions import db
from stashhog.models import Daemon, DaemonMetric, DaemonRun
from stashhog.serializers import iso

metrics = DaemonMetric.__table__
runs = DaemonRun.__table__
ROLLUP = 60
# range name -> (span, resolution read, bucket seconds)
RANGES = {
    "15m": (timedelta(minutes=15), 0, 0),
    "6h": (timedelta(hours=6), 0, 60),
    "7d": (timedelta(days=7), ROLLUP, 600),
}


def record_sample(daemon_id: uuid.UUID, generation: int, sample: dict[str, Any]) -> None:
    """Store one sample and keep the run's latest values and peak RSS."""
    now = datetime.now(UTC)
    with db.engine.begin() as conn:
        conn.execute(
            insert(metrics).values(
                daemon_id=daemon_id, generation=generation, resolution=0, created_at=now, **sample
            )  # fmt: skip
        )
        peak = func.coalesce(runs.c.peak_rss, 0)
        conn.execute(
            update(runs)
            .where(runs.c.daemon_id == daemon_id, runs.c.generation == generation)
            .values(
                cpu_percent=sample["cpu_percent"], rss=sample["rss"],
                peak_rss=func.greatest(peak, sample["rss"])
                if conn.dialect.name == "postgresql" else func.max(peak, sample["rss"]),
            )
        )  # fmt: skip


def series(daemon_id: uuid.UUID, range_name: str, now: datetime | None = None) -> dict[str, Any]:
    """The daemon's samples over ``range_name`` (15m, 6h or 7d), oldest first."""
    if range_name not in RANGES:
        raise Invalid(f"range must be one of {', '.join(RANGES)}", key="range")
    span, resolution, bucket = RANGES[range_name]
    now = now or datetime.now(UTC)
    query = (
        select(metrics)
        .where(metrics.c.daemon_id == daemon_id, metrics.c.resolution == resolution)
        .where(metrics.c.created_at >= now - span)
        .order_by(metrics.c.created_at)
    )
    with db.engine.connect() as conn:
        rows = conn.execute(query).all()
    points = [_point(row) for row in rows] if not bucket else _buckets(rows, bucket)
    return {
        "daemon_id": str(daemon_id),
        "range": range_name,
        "resolution_seconds": bucket or None,
        "points": points,
    }


def _point(row: Any) -> dict[str, Any]:
    return {
        "t": iso(row.created_at),
        "cpu_percent": round(row.cpu_percent, 2),
        "rss": row.rss,
        "threads": row.threads,
        "open_files": row.open_files,
    }


def _buckets(rows: list[Any], width: int) -> list[dict[str, Any]]:
    grouped: dict[datetime, list[Any]] = defaultdict(list)
    for row in rows:
        grouped[_floor(row.created_at, width)].append(row)
    return [
        {
            "t": iso(start),
            "cpu_percent": round(sum(r.cpu_percent for r in group) / len(group), 2),
            "rss": max(r.rss for r in group),
            "threads": max(r.threads for r in group),
            "open_files": max(r.open_files for r in group),
        }
        for start, group in grouped.items()
    ]


def _floor(moment: datetime, width: int) -> datetime:
    epoch = int(moment.timestamp())
    return datetime.fromtimestamp(epoch - epoch % width, UTC)


def roll_up(now: datetime | None = None) -> int:
    """Minute rollups for every whole minute since the last one; returns rollups written."""
    now = now or datetime.now(UTC)
    end = _floor(now, ROLLUP)
    with db.engine.begin() as conn:
        last = dict(
            conn.execute(
                select(metrics.c.daemon_id, func.max(metrics.c.created_at))
                .where(metrics.c.resolution == ROLLUP)
                .group_by(metrics.c.daemon_id)
            ).all()
        )
        floor = end - timedelta(hours=6)
        rows = conn.execute(
            select(metrics)
            .where(metrics.c.resolution == 0)
            .where(metrics.c.created_at >= floor, metrics.c.created_at < end)
        ).all()
        values = _rollups(rows, last)
        if values:
            conn.execute(insert(metrics), values)
    return len(values)


def _rollups(rows: list[Any], last: dict) -> list[dict[str, Any]]:
    grouped: dict[tuple, list[Any]] = defaultdict(list)
    for row in rows:
        start = _floor(row.created_at, ROLLUP)
        done = last.get(row.daemon_id)
        if done is None or start > _aware(done):
            grouped[(row.daemon_id, start)].append(row)
    return [
        {
            "daemon_id": daemon_id,
            "resolution": ROLLUP,
            "created_at": start,
            "generation": group[-1].generation,
            "cpu_percent": sum(r.cpu_percent for r in group) / len(group),
            "rss": max(r.rss for r in group),
            "threads": max(r.threads for r in group),
            "open_files": max(r.open_files for r in group),
        }  # fmt: skip
        for (daemon_id, start), group in grouped.items()
    ]


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def latest_samples() -> dict[str, dict[str, Any]]:
    """Each daemon's current run's latest CPU and RSS (for /metrics and the alert rules)."""
    daemons = Daemon.__table__
    query = select(runs.c.daemon_id, runs.c.cpu_percent, runs.c.rss, runs.c.peak_rss).join(
        daemons, (daemons.c.id == runs.c.daemon_id) & (daemons.c.generation == runs.c.generation)
    )
    with db.engine.connect() as conn:
        return {str(row.daemon_id): row._asdict() for row in conn.execute(query)}
