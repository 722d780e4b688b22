"""A log pipeline's database connections in a prefork child (one kept while behind, handed
to the final status) and the stop deadline's cancelled batch, against the real PostgreSQL."""

from __future__ import annotations

import asyncio
import threading
import uuid
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy import text

from stashhog import create_app
from stashhog.database import HeldConnection, use_worker_pool
from stashhog.extensions import db
from stashhog.services.daemon_logs import LogLine, ran_out_of_time, write_log_batch
from stashhog.services.daemon_state import change_daemon
from tests.support.wait import eventually
from tests.test_log_pipeline import run_with_flusher, stored


def prefork_child_app(app):
    """An app whose engine is a prefork child's (no pool), its connections named."""
    name = f"pipeline-{uuid.uuid4().hex[:8]}"
    config = {k: v for k, v in app.config.items() if not k.startswith("RATELIMIT_")}
    child = create_app({**config, "SQLALCHEMY_ENGINE_OPTIONS": {
        "connect_args": {"application_name": name}}})  # fmt: skip
    use_worker_pool(child, pool_size=None)
    return name, child


def test_a_prefork_childs_pipeline_keeps_its_connection_while_behind_then_closes_it(
    app, make_daemon
):
    """Without a pool (a prefork child), each batch connected anew: 20-30 ms a batch of a
    burst. While the next batch already waits, the writes share one backend; once caught
    up, the pipeline holds no connection."""
    name, child = prefork_child_app(app)
    daemon = make_daemon(generation=1)
    backends = []

    def recorded(write):
        def write_noting_backend(*args, conn=None):
            if conn is not None:
                backends.append(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar())
                conn.commit()
            else:
                backends.append(None)
            return write(*args, conn=conn)

        return write_noting_backend

    async def call_db(fn, *args, **kwargs):
        if fn.__name__ == "run":  # WriterConnection.run(write, ...): note the write's backend
            args = (recorded(args[0]), *args[1:])

        def run():
            with child.app_context():
                return fn(*args, **kwargs)

        return await asyncio.to_thread(run)

    async def scenario(pipeline):
        for number in range(60_000):  # no await: the first batch leaves a full one waiting
            pipeline.emit("INFO", f"line {number}")
        await pipeline.wait_flushed()

    run_with_flusher(app, daemon, scenario, call_db=call_db, max_lines=100_000)
    assert len(stored(daemon.id)) == 60_000
    assert len(backends) >= 2 and None not in backends and len(set(backends)) == 1, backends

    def sessions() -> int:
        with db.engine.connect() as conn:
            return conn.execute(
                text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :name"),
                {"name": name},
            ).scalar_one()

    assert eventually(lambda: sessions() == 0, timeout=5)


def test_a_final_status_on_the_held_connection_commits_with_its_run_and_a_broken_one_is_told(
    app, make_daemon
):
    """The stop's final status goes on the connection its last log lines kept: one
    transaction with the run record. A held connection whose backend died meanwhile raises
    OperationalError, which the runtime answers with a connection of its own."""
    name, child = prefork_child_app(app)
    daemon = make_daemon(generation=3)
    held = HeldConnection()
    with child.app_context():
        line = LogLine(1, "INFO", "stopped (test)", datetime.now(UTC))
        held.run(write_log_batch, daemon.id, 3, [line], keep=lambda: True)
        conn = held.take()
        assert conn is not None and held.take() is None  # handed over, once
        backend = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        conn.commit()
        ran = []
        changed = change_daemon(daemon.id, on=conn, if_generation=3, status_line="done",
                                along=lambda c: ran.append(c is conn))  # fmt: skip
        assert changed["status_line"] == "done" and ran == [True]
        with db.engine.connect() as admin:  # (the child's engine: its own connection)
            admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
        with pytest.raises(sa.exc.OperationalError):
            change_daemon(daemon.id, on=conn, if_generation=3, status_line="again")
        conn.close()
    assert [r.message for r in stored(daemon.id)] == ["stopped (test)"]


def test_a_final_batch_still_running_at_the_stop_deadline_is_cancelled_and_counted(
    app, make_daemon
):
    """A final-flush batch that meets a slow moment (here the daemon's row locked by another
    transaction, as a merge of the full-text index's pending list can stall a COPY for a few
    hundred ms) is cancelled by PostgreSQL at the deadline: its lines count as not written,
    and the stop does not wait for it (before, it waited for the lock, then wrote them)."""
    daemon = make_daemon(generation=1)
    result = {}
    locker = db.engine.connect()
    locker.execute(text("SELECT 1 FROM daemons WHERE id = :id FOR UPDATE"), {"id": daemon.id})
    release = threading.Timer(1.5, locker.rollback)

    async def scenario(pipeline):
        pipeline.close()  # the flusher ends: only finish() writes from here on
        await asyncio.sleep(0.05)
        for number in range(2000):  # more than a stop writes in one go with its last line
            pipeline.emit("INFO", f"line {number}")
        loop = asyncio.get_running_loop()
        began = loop.time()
        release.start()
        result["unwritten"] = await pipeline.finish(began + 0.5, lambda n: f"stopped; {n} left")
        result["seconds"] = loop.time() - began

    try:
        run_with_flusher(app, daemon, scenario)
    finally:
        release.join()
        locker.close()
    assert result["unwritten"] == 2000
    # The last line waited for the lock (1.5 s); the batch did not wait as well.
    assert 1.4 < result["seconds"] < 2.5, result
    assert [r.message for r in stored(daemon.id)] == ["stopped; 2000 left"]


def test_a_statement_timeout_is_told_apart_from_the_raw_cursor_and_through_sqlalchemy(app):
    """The final flush's COPY runs on the raw cursor: its cancellation is psycopg2's own
    error (CI: taken for a passing failure, retried after 0.5 s, the stop overran)."""
    with app.app_context(), db.engine.connect() as conn:
        conn.exec_driver_sql("SET statement_timeout = 10")
        raw = conn.connection.dbapi_connection.cursor()
        with pytest.raises(Exception) as from_cursor:
            raw.execute("SELECT pg_sleep(1)")
        conn.rollback()
        conn.exec_driver_sql("SET statement_timeout = 10")
        with pytest.raises(sa.exc.OperationalError) as wrapped:
            conn.exec_driver_sql("SELECT pg_sleep(1)")
        conn.rollback()
        with pytest.raises(sa.exc.ProgrammingError) as other:
            conn.exec_driver_sql("SELECT no_such_column FROM daemons")
    assert ran_out_of_time(from_cursor.value) and ran_out_of_time(wrapped.value)
    assert not ran_out_of_time(other.value)
