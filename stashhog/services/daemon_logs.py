"""Writing log batches (fenced, in one statement) and reading them back."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import insert, text
from sqlalchemy.engine import Connection

from stashhog.events import EventType, publish
from stashhog.extensions import db
from stashhog.models import DaemonLog
from stashhog.models.types import utcnow
from stashhog.observability.counters import count_log_lines
from stashhog.serializers import log_line_to_dict, log_to_dict
from stashhog.services.fencing import hold_generation

logs = DaemonLog.__table__
# Lines per published daemon_log event: keeps each message small for the relay and browser.
EVENT_CHUNK = 500

# One INSERT for the whole batch: unnest() turns the column arrays into rows (PostgreSQL).
_UNNEST_INSERT = text(
    "INSERT INTO daemon_logs (daemon_id, generation, level, message, created_at, seq) "
    "SELECT CAST(:daemon_id AS uuid), :generation, t.level, t.message, t.created_at, t.seq "
    "FROM unnest(CAST(:levels AS text[]), CAST(:messages AS text[]), "
    "CAST(:created AS timestamptz[]), CAST(:seqs AS bigint[])) "
    "AS t(level, message, created_at, seq) "
    # A retry of a batch whose commit reply was lost skips the lines already stored.
    "ON CONFLICT (daemon_id, generation, seq) DO NOTHING RETURNING id, seq"
)


class LogLine(NamedTuple):
    seq: int
    level: str
    message: str
    created_at: datetime


def write_log_batch(daemon_id: uuid.UUID, generation: int, lines: Sequence[LogLine]) -> list[dict]:
    """Persist ``lines`` if ``generation`` still owns the daemon (else ``Fenced``), then
    publish them. Returns the newly stored lines as dicts with their ids, in order."""
    if not lines:
        return []
    with db.engine.begin() as conn:
        hold_generation(conn, daemon_id, generation)
        ids = _insert(conn, daemon_id, generation, lines)
    return publish_log_lines(daemon_id, generation, lines, ids)


def publish_log_lines(
    daemon_id: uuid.UUID, generation: int, lines: Sequence[LogLine], ids: dict[int, int]
) -> list[dict]:
    """Publish the stored ``lines`` (``ids`` maps seq to row id; others are skipped) as
    ``daemon_log`` events of EVENT_CHUNK lines each; returns them as dicts."""
    written = [
        log_line_to_dict(ids[line.seq], daemon_id, generation, line)
        for line in lines
        if line.seq in ids
    ]
    for start in range(0, len(written), EVENT_CHUNK):
        publish(EventType.DAEMON_LOG, daemon_id, lines=written[start : start + EVENT_CHUNK])
    count_log_lines(daemon_id, (line["level"] for line in written))
    return written


def pg_text_array(values: Iterable[str]) -> str:
    """One PostgreSQL array literal: a single parameter instead of one quoted literal per
    element, which made building the statement a third of the flusher's CPU."""
    quoted = (value.replace("\\", "\\\\").replace('"', '\\"') for value in values)
    return '{"' + '","'.join(quoted) + '"}'


def _insert(conn: Connection, daemon_id, generation: int, lines: Sequence[LogLine]) -> dict:
    if conn.dialect.name == "postgresql":
        rows = conn.execute(
            _UNNEST_INSERT,
            {
                "daemon_id": str(daemon_id),
                "generation": generation,
                "levels": pg_text_array(line.level for line in lines),
                "messages": pg_text_array(line.message for line in lines),
                "created": pg_text_array(line.created_at.isoformat() for line in lines),
                "seqs": "{" + ",".join(str(line.seq) for line in lines) + "}",
            },
        )
    else:
        rows = conn.execute(
            insert(logs).returning(logs.c.id, logs.c.seq, sort_by_parameter_order=True),
            [
                {"daemon_id": daemon_id, "generation": generation, **line._asdict()}
                for line in lines
            ],
        )
    return {seq: log_id for log_id, seq in rows}


def write_supervisor_log(daemon_id: uuid.UUID, level: str, message: str) -> dict:
    """A line written on a daemon's behalf by the supervisor or service (no instance, so
    no generation and no fencing), persisted and published like any other."""
    with db.engine.begin() as conn:
        row = conn.execute(
            insert(logs)
            .values(daemon_id=daemon_id, level=level, message=message, created_at=utcnow())
            .returning(*logs.c)
        ).first()
    line = log_to_dict(row)
    publish(EventType.DAEMON_LOG, daemon_id, lines=[line])
    count_log_lines(daemon_id, [line["level"]])
    return line
