"""Log batches land exactly as emitted, whatever the text holds, and a retry is harmless."""

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from stashhog.extensions import db
from stashhog.models import DaemonLog
from stashhog.services.daemon_logs import COPY_CHUNK, LogLine, write_log_batch
from stashhog.services.fencing import Fenced

AWKWARD = [
    'quotes " and \\" and \\\\',
    "braces {a,b} and commas, , and NULL",
    "unicode ✓ ü 日本 and emoji 🐗",
    "multi\nline\ttabbed\r\n",
    "",
    "<script>alert(1)</script>",
    "'single' quotes; DROP TABLE daemons; --",
    # COPY's text format: its NULL marker, its end-of-data marker, escapes that must stay text.
    "\\N",
    "\\.",
    "a \\t is not a tab, a \\n not a newline, \\\\N not NULL",
    "\\",
    "tab\tat\tend\t",
    "\r",
    "\x01\x7f control bytes \u2028 and \u00a0",
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
    assert [row.seq for row in stored] == list(range(1, len(AWKWARD) + 1))
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


def messages_of(daemon_id) -> list[str]:
    db.session.expire_all()
    query = select(DaemonLog.message).where(DaemonLog.daemon_id == daemon_id)
    return list(db.session.scalars(query.order_by(DaemonLog.id)))


def test_text_postgresql_cannot_hold_is_stored_replaced_not_refused(make_daemon):
    daemon = make_daemon(generation=1)
    now = datetime.now(UTC)
    lines = [LogLine(1, "INFO", "nul \x00 here", now), LogLine(2, "INFO", "lone \ud800 half", now)]
    assert len(write_log_batch(daemon.id, 1, lines)) == 2  # the batch lands, not retried forever
    assert messages_of(daemon.id) == ["nul \ufffd here", "lone ? half"]


def test_a_fenced_batch_writes_nothing(make_daemon):
    daemon = make_daemon(generation=2)
    now = datetime.now(UTC)
    with pytest.raises(Fenced):
        write_log_batch(daemon.id, 1, [LogLine(1, "INFO", "from the old instance", now)])
    assert messages_of(daemon.id) == []


def test_ids_are_ascending_and_unique_across_batches(make_daemon):
    daemon = make_daemon(generation=1)
    now = datetime.now(UTC)
    written = []
    for first in (1, 101, 201):
        lines = [LogLine(seq, "INFO", f"line {seq}", now) for seq in range(first, first + 100)]
        written += write_log_batch(daemon.id, 1, lines)
    ids = [line["id"] for line in written]
    assert ids == sorted(ids) and len(set(ids)) == 300
    rows = db.session.execute(
        select(DaemonLog.id, DaemonLog.seq).where(DaemonLog.daemon_id == daemon.id)
    ).all()
    assert {line["id"]: line["seq"] for line in written} == dict(rows)


def test_on_the_embedded_sqlite_default_a_retried_batch_writes_nothing_twice(tmp_path, redis_url):
    from flask_migrate import upgrade

    from stashhog import create_app
    from stashhog.models import Daemon
    from tests.support import services

    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'embedded.db'}",
                      "REDIS_URL": redis_url, "TESTING": True,
                      "SECRET_KEY": services.TEST_SECRET_KEY})  # fmt: skip
    with app.app_context():
        upgrade(revision="head")
        daemon = Daemon(name="sqlite-logs", type="TEST_DAEMON", configuration={}, generation=1)
        db.session.add(daemon)
        db.session.commit()
        now = datetime.now(UTC)
        first = [LogLine(n, "INFO", f"line {n}\tand \\N", now) for n in (1, 2)]
        write_log_batch(daemon.id, 1, first)
        again = write_log_batch(daemon.id, 1, [*first, LogLine(3, "INFO", "line 3", now)])
        assert [line["seq"] for line in again] == [3]
        assert messages_of(daemon.id) == [first[0].message, first[1].message, "line 3"]
        db.session.remove()
        db.engine.dispose()


def test_a_batch_of_several_copy_chunks_lands_whole_and_in_order(make_daemon):
    daemon = make_daemon(generation=1)
    now = datetime.now(UTC)
    count = 2 * COPY_CHUNK + 7
    lines = [
        LogLine(n, "INFO", f"{n} {AWKWARD[n % len(AWKWARD)]}", now) for n in range(1, count + 1)
    ]
    written = write_log_batch(daemon.id, 1, lines)
    assert messages_of(daemon.id) == [line.message for line in lines]
    assert [line["seq"] for line in written] == list(range(1, count + 1))
