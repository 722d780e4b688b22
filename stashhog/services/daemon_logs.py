"""Writing log batches (fenced, one COPY each on PostgreSQL) and reading them back."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import insert, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

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
# Lines per chunk of a COPY's data (about 100 KB): see CopyStream.
COPY_CHUNK = 2000
# A line's identity (daemon, generation, seq): what a retried batch collides on.
LINE_IDENTITY = "uq_daemon_logs_daemon_id_generation_seq"
QUERY_CANCELED = "57014"  # SQLSTATE of a statement cancelled by its statement_timeout

# The batch's row ids in one round trip (COPY returns none): nextval() once a line, and only
# the range back when no other writer took values meanwhile (nearly always), else the list.
_ALLOCATE_IDS = text(
    "SELECT min(id), max(id), CASE WHEN max(id) - min(id) + 1 = count(*) THEN NULL "
    "ELSE array_agg(id ORDER BY id) END "
    "FROM (SELECT nextval('daemon_logs_id_seq') AS id FROM generate_series(1, :n)) AS ids"
)
_COPY = "COPY daemon_logs (id, daemon_id, generation, level, message, created_at, seq) FROM STDIN"
# COPY's text format: a backslash, tab, newline or carriage return inside a value is escaped.
# NUL cannot be stored in PostgreSQL text at all: it becomes U+FFFD, as emit() does already.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": "\ufffd"})
_NEEDS_ESCAPE = re.compile("[\\\\\t\n\r\0]")  # a search is 6x cheaper than translate()


class LogLine(NamedTuple):
    seq: int
    level: str
    message: str
    created_at: datetime


def write_log_batch(
    daemon_id: uuid.UUID,
    generation: int,
    lines: Sequence[LogLine],
    conn: Connection | None = None,
    *,
    within: float | None = None,
) -> list[dict]:
    """Persist ``lines`` if ``generation`` still owns the daemon (else ``Fenced``), then
    publish them. Returns the newly stored lines as dicts with their ids, in order."""
    ids = store_log_batch(daemon_id, generation, lines, conn, within=within)
    return publish_log_lines(daemon_id, generation, lines, ids)


def store_log_batch(
    daemon_id: uuid.UUID,
    generation: int,
    lines: Sequence[LogLine],
    conn: Connection | None = None,
    *,
    within: float | None = None,
) -> dict:
    """Persist ``lines`` if ``generation`` still owns the daemon (else ``Fenced``); returns
    the row id of each newly stored line, by seq. On ``conn`` (a transaction of its own)
    when given, else on a connection for this call. ``within``: seconds each statement may
    take on PostgreSQL (a stop's deadline), past which it is cancelled and rolled back
    (``ran_out_of_time``).

    A batch retried after its commit reply was lost collides on LINE_IDENTITY: it is written
    again without the lines already stored, so a retry never duplicates a line."""
    if not lines:
        return {}
    try:
        return _store(daemon_id, generation, lines, conn, retry=False, within=within)
    except IntegrityError as exc:
        if not is_line_collision(exc):
            raise
        return _store(daemon_id, generation, lines, conn, retry=True, within=within)


def ran_out_of_time(exc: BaseException) -> bool:
    """Was the write cancelled by its statement timeout (``within``)? The COPY runs on the
    raw cursor, whose error is psycopg2's own; a statement through SQLAlchemy wraps it."""
    return any(
        getattr(error, "pgcode", None) == QUERY_CANCELED
        for error in (exc, getattr(exc, "orig", None))
    )


def is_line_collision(exc: IntegrityError) -> bool:
    """Did the batch collide with lines already stored (PostgreSQL names the index, SQLite
    the columns)?"""
    message = str(exc.orig)
    return LINE_IDENTITY in message or "daemon_logs.seq" in message


def _store(daemon_id, generation: int, lines: Sequence[LogLine], conn: Connection | None, *,
           retry: bool, within: float | None) -> dict:  # fmt: skip
    if conn is None:
        with db.engine.begin() as own:
            return _store_in(own, daemon_id, generation, lines, retry=retry, within=within)
    with conn.begin():
        return _store_in(conn, daemon_id, generation, lines, retry=retry, within=within)


def _store_in(conn: Connection, daemon_id, generation: int, lines: Sequence[LogLine], *,
              retry: bool, within: float | None) -> dict:  # fmt: skip
    if within is not None and conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SET LOCAL statement_timeout = {max(1, round(within * 1000))}")
    hold_generation(conn, daemon_id, generation)
    if retry:
        lines = _unstored(conn, daemon_id, generation, lines)
    if not lines:
        return {}
    if conn.dialect.name == "postgresql":
        return _copy(conn, daemon_id, generation, lines)
    return _insert(conn, daemon_id, generation, lines)


def _unstored(conn: Connection, daemon_id, generation: int, lines: Sequence[LogLine]) -> list:
    """The lines of ``lines`` not stored yet (by seq, within this generation)."""
    query = select(logs.c.seq).where(
        logs.c.daemon_id == daemon_id,
        logs.c.generation == generation,
        logs.c.seq.between(lines[0].seq, lines[-1].seq),
    )
    stored = set(conn.execute(query).scalars())
    return [line for line in lines if line.seq not in stored]


def publish_log_lines(
    daemon_id: uuid.UUID, generation: int, lines: Sequence[LogLine], ids: dict[int, int]
) -> list[dict]:
    """Publish the stored ``lines`` (``ids`` maps seq to row id; others are skipped) as
    ``daemon_log`` events of EVENT_CHUNK lines each; returns them as dicts."""
    daemon = str(daemon_id)  # once: a UUID's str() per line was a sixth of the cost
    written = [
        log_line_to_dict(ids[line.seq], daemon, generation, line)
        for line in lines
        if line.seq in ids
    ]
    for start in range(0, len(written), EVENT_CHUNK):
        publish(EventType.DAEMON_LOG, daemon_id, lines=written[start : start + EVENT_CHUNK])
    count_log_lines(daemon_id, (line["level"] for line in written))
    return written


def allocate_log_ids(conn: Connection, count: int) -> list[int] | range:
    """``count`` new row ids from the table's sequence, ascending."""
    first, last, scattered = conn.execute(_ALLOCATE_IDS, {"n": count}).one()
    return range(first, last + 1) if scattered is None else scattered


def copy_escape(value: str) -> str:
    """``value`` as one field of COPY's text format."""
    return value.translate(_COPY_ESCAPES) if _NEEDS_ESCAPE.search(value) else value


def copy_text(daemon_id, generation: int, lines: Sequence[LogLine], ids) -> bytes:
    """The batch as COPY text rows (the columns of ``_COPY``), UTF-8 encoded; a lone
    surrogate, which UTF-8 cannot hold, becomes "?" rather than failing the batch forever."""
    fixed = f"\t{daemon_id}\t{generation}\t"
    rows = [
        f"{log_id}{fixed}{copy_escape(line.level)}\t{copy_escape(line.message)}\t"
        f"{line.created_at.isoformat()}\t{line.seq}\n"
        for log_id, line in zip(ids, lines, strict=True)
    ]
    return "".join(rows).encode("utf-8", "replace")


class CopyStream:
    """The batch's COPY rows for ``copy_expert``, encoded COPY_CHUNK lines at a time as the
    driver reads them: PostgreSQL stores each chunk while this process encodes the next
    (encoding the whole batch first left the database idle for a third of the write)."""

    def __init__(self, daemon_id, generation: int, lines: Sequence[LogLine], ids) -> None:
        self.args, self.lines, self.ids, self.start = (daemon_id, generation), lines, ids, 0

    def read(self, _size: int = -1) -> bytes:
        start, self.start = self.start, self.start + COPY_CHUNK
        end = min(self.start, len(self.lines))
        if start >= end:
            return b""
        return copy_text(*self.args, self.lines[start:end], self.ids[start:end])


def _copy(conn: Connection, daemon_id, generation: int, lines: Sequence[LogLine]) -> dict:
    ids = allocate_log_ids(conn, len(lines))
    with conn.connection.dbapi_connection.cursor() as cursor:
        try:
            cursor.copy_expert(_COPY, CopyStream(daemon_id, generation, lines, ids))
        except conn.dialect.dbapi.IntegrityError as exc:  # the raw cursor is not wrapped
            raise IntegrityError(_COPY, None, exc) from exc
    return {line.seq: log_id for log_id, line in zip(ids, lines, strict=True)}


def _insert(conn: Connection, daemon_id, generation: int, lines: Sequence[LogLine]) -> dict:
    """The embedded SQLite default: one executemany INSERT ... RETURNING."""
    rows = conn.execute(
        insert(logs).returning(logs.c.id, logs.c.seq, sort_by_parameter_order=True),
        [{"daemon_id": daemon_id, "generation": generation, **line._asdict()} for line in lines],
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
