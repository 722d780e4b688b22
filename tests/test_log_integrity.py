"""A log line always belongs to a daemon that exists, on PostgreSQL where statement-level
triggers (migration 0009) replace the per-row foreign key: unknown daemons are refused, by
any statement, deleting a daemon deletes its lines, and neither a concurrent delete nor an
id change can leave a line orphaned."""

from __future__ import annotations

import io
import threading
import time
import uuid

import psycopg2
import pytest
from psycopg2 import errors
from sqlalchemy import text

from stashhog.extensions import db

INSERT = (
    "INSERT INTO daemon_logs (daemon_id, level, message, created_at) "
    "VALUES (%s, 'INFO', 'a line', now())"
)


@pytest.fixture
def pg(app_ctx, clean_db):
    """A raw psycopg2 connection (autocommit off) to the test database."""
    connection = psycopg2.connect(
        db.engine.url.set(drivername="postgresql").render_as_string(False)
    )
    yield connection
    connection.close()


def lines_of(daemon_id) -> int:
    db.session.rollback()
    query = text("SELECT count(*) FROM daemon_logs WHERE daemon_id = :d")
    return db.session.execute(query, {"d": str(daemon_id)}).scalar()


def test_a_line_for_an_unknown_daemon_is_refused(pg):
    with pytest.raises(errors.ForeignKeyViolation, match="daemon_logs_daemon_id_fkey"):
        pg.cursor().execute(INSERT, (str(uuid.uuid4()),))


def test_a_statement_naming_one_unknown_daemon_among_known_ones_writes_nothing(pg, make_daemon):
    known = make_daemon()
    rows = "".join(f"{daemon}\tINFO\tline\t2026-12-01T00:00:00+00:00\n" for daemon in
                   [known.id, known.id, uuid.uuid4(), known.id])  # fmt: skip
    with pytest.raises(errors.ForeignKeyViolation):
        pg.cursor().copy_expert(
            "COPY daemon_logs (daemon_id, level, message, created_at) FROM STDIN", io.StringIO(rows)
        )
    pg.rollback()
    assert lines_of(known.id) == 0


def test_moving_a_line_to_an_unknown_daemon_is_refused(pg, make_daemon):
    daemon = make_daemon()
    cursor = pg.cursor()
    cursor.execute(INSERT, (str(daemon.id),))
    with pytest.raises(errors.ForeignKeyViolation):
        cursor.execute("UPDATE daemon_logs SET daemon_id = %s", (str(uuid.uuid4()),))


def test_deleting_a_daemon_deletes_its_lines_and_only_its(pg, make_daemon):
    doomed, kept = make_daemon(), make_daemon()
    cursor = pg.cursor()
    for daemon in (doomed, doomed, kept):
        cursor.execute(INSERT, (str(daemon.id),))
    cursor.execute("DELETE FROM daemons WHERE id = %s", (str(doomed.id),))
    pg.commit()
    assert (lines_of(doomed.id), lines_of(kept.id)) == (0, 1)


def test_the_id_of_a_daemon_with_lines_cannot_change(pg, make_daemon):
    daemon = make_daemon()
    cursor = pg.cursor()
    cursor.execute(INSERT, (str(daemon.id),))
    with pytest.raises(errors.ForeignKeyViolation):
        cursor.execute(
            "UPDATE daemons SET id = %s WHERE id = %s", (str(uuid.uuid4()), str(daemon.id))
        )


def test_daemons_cannot_be_truncated_from_under_their_lines(pg, make_daemon):
    daemon_id = str(make_daemon().id)
    db.session.rollback()  # the session's read of the row would block TRUNCATE's lock
    cursor = pg.cursor()
    cursor.execute(INSERT, (daemon_id,))
    with pytest.raises(errors.FeatureNotSupported):
        cursor.execute("TRUNCATE daemons CASCADE")


def in_thread(fn) -> threading.Thread:
    thread = threading.Thread(target=fn, daemon=True)
    thread.start()
    return thread


def test_a_delete_waits_for_a_writer_and_then_takes_its_lines(pg, make_daemon, app):
    daemon = make_daemon()
    writer = pg.cursor()
    writer.execute(INSERT, (str(daemon.id),))  # uncommitted: the daemon row is key-share locked
    deleter = psycopg2.connect(pg.dsn)
    thread = in_thread(
        lambda: deleter.cursor().execute("DELETE FROM daemons WHERE id = %s", (str(daemon.id),))
    )
    thread.join(0.5)
    assert thread.is_alive()  # the delete waits for the writer
    pg.commit()
    thread.join(5)
    deleter.commit()
    deleter.close()
    assert lines_of(daemon.id) == 0  # the cascade saw the committed line


def test_a_writer_racing_a_delete_is_refused_once_the_delete_commits(pg, make_daemon):
    daemon = make_daemon()
    deleter = psycopg2.connect(pg.dsn)
    deleter.cursor().execute("DELETE FROM daemons WHERE id = %s", (str(daemon.id),))
    outcome = []

    def write():
        try:
            pg.cursor().execute(INSERT, (str(daemon.id),))
            outcome.append("written")
        except errors.ForeignKeyViolation:
            outcome.append("refused")

    thread = in_thread(write)
    time.sleep(0.3)
    assert outcome == []  # the writer waits for the deleter's lock
    deleter.commit()
    deleter.close()
    thread.join(5)
    assert outcome == ["refused"]
    pg.rollback()
    assert lines_of(daemon.id) == 0
