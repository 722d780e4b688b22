"""Log batches land exactly as emitted, whatever the text holds, and a retry is harmless."""

from datetime import UTC, datetime

from sqlalchemy import select

from stashhog.extensions import db
from stashhog.models import DaemonLog
from stashhog.services.daemon_logs import LogLine, write_log_batch

AWKWARD = [
    'quotes " and \\" and \\\\',
    "braces {a,b} and commas, , and NULL",
    "unicode ✓ ü 日本 and emoji 🐗",
    "multi\nline\ttabbed\r\n",
    "",
    "<script>alert(1)</script>",
    "'single' quotes; DROP TABLE daemons; --",
]


def test_awkward_messages_round_trip_exactly(make_daemon):
    daemon = make_daemon(generation=3)
    now = datetime.now(UTC)
    lines = [LogLine(n + 1, "INFO", text, now) for n, text in enumerate(AWKWARD)]
    written = write_log_batch(daemon.id, 3, lines)
    stored = db.session.scalars(
        select(DaemonLog).where(DaemonLog.daemon_id == daemon.id).order_by(DaemonLog.id)
    ).all()
    assert [row.message for row in stored] == AWKWARD
    assert [row.seq for row in stored] == [1, 2, 3, 4, 5, 6, 7]
    assert [line["id"] for line in written] == [row.id for row in stored]
    assert abs((stored[0].created_at - now).total_seconds()) < 0.001


def test_a_retried_batch_writes_nothing_twice(make_daemon):
    daemon = make_daemon(generation=1)
    now = datetime.now(UTC)
    first = [LogLine(n, "DEBUG", f"line {n}", now) for n in (1, 2)]
    write_log_batch(daemon.id, 1, first)
    again = write_log_batch(daemon.id, 1, [*first, LogLine(3, "DEBUG", "line 3", now)])
    assert [line["seq"] for line in again] == [3]
    count = db.session.scalars(select(DaemonLog.id).where(DaemonLog.daemon_id == daemon.id))
    assert len(count.all()) == 3
