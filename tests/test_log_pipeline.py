"""The log pipeline's bounded buffer, its drop accounting, backpressure and the final flush
of a stop, in this process, writing to the real PostgreSQL."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from stashhog.extensions import db
from stashhog.models import DaemonLog
from workers.log_pipeline import DROP_WARNING, FINAL_GRACE, LINE_OVERHEAD, LogPipeline


def stored(daemon_id) -> list[DaemonLog]:
    db.session.expire_all()
    query = select(DaemonLog).where(DaemonLog.daemon_id == daemon_id).order_by(DaemonLog.id)
    return list(db.session.scalars(query))


def run_with_flusher(app, daemon, scenario, **caps) -> LogPipeline:
    """Run ``scenario(pipeline)`` beside the pipeline's flusher, as an instance does."""

    async def call_db(fn, *args, **kwargs):
        def run():
            with app.app_context():
                return fn(*args, **kwargs)

        return await asyncio.to_thread(run)

    async def main() -> LogPipeline:
        pipeline = LogPipeline(daemon.id, daemon.generation, call_db, **caps)
        flusher = asyncio.create_task(pipeline.run(lambda: None))
        try:
            await asyncio.wait_for(scenario(pipeline), 20)
        finally:
            pipeline.close()
            await flusher
        return pipeline

    return asyncio.run(main())


def test_past_the_line_cap_lines_are_dropped_counted_and_reported_where_they_went(app, make_daemon):
    daemon = make_daemon(generation=1)

    async def scenario(pipeline):
        for number in range(1000):  # no await: the flusher cannot run meanwhile
            pipeline.emit("INFO", f"line {number}")
        await pipeline.wait_flushed()
        pipeline.emit("INFO", "after the flood")
        await pipeline.wait_flushed()

    pipeline = run_with_flusher(app, daemon, scenario, max_lines=100)
    rows = stored(daemon.id)
    assert pipeline.dropped == 900
    assert [r.message for r in rows] == [
        *(f"line {n}" for n in range(100)),
        DROP_WARNING.format(900),
        "after the flood",
    ]
    assert rows[100].level == "WARNING"
    assert [r.seq for r in rows] == list(range(1, 103))  # dropped lines take no seq


def test_past_the_byte_cap_lines_are_dropped(app, make_daemon):
    daemon = make_daemon(generation=1)
    text = "x" * 100

    async def scenario(pipeline):
        for _ in range(25):
            pipeline.emit("INFO", text)
        await pipeline.wait_flushed()

    pipeline = run_with_flusher(app, daemon, scenario, max_bytes=10 * (100 + LINE_OVERHEAD))
    rows = stored(daemon.id)
    assert pipeline.dropped == 15
    assert [r.message for r in rows] == [text] * 10 + [DROP_WARNING.format(15)]


def test_waiting_for_the_flush_is_backpressure_nothing_is_dropped(app, make_daemon):
    daemon = make_daemon(generation=1)

    async def scenario(pipeline):
        for number in range(2000):
            pipeline.emit("DEBUG", f"line {number}")
            if number % 50 == 49:
                await pipeline.wait_flushed()
        await pipeline.wait_flushed()

    pipeline = run_with_flusher(app, daemon, scenario, max_lines=100)
    assert pipeline.dropped == 0
    assert [r.message for r in stored(daemon.id)] == [f"line {n}" for n in range(2000)]


def test_the_final_flush_counts_what_the_deadline_left_unwritten_in_the_last_line(app, make_daemon):
    daemon = make_daemon(generation=1)
    lines = 200_000  # far more than the final flush's grace (FINAL_GRACE) can write
    result = {}

    async def scenario(pipeline):
        pipeline.close()  # the flusher ends: only finish() writes from here on
        await asyncio.sleep(0.05)
        for number in range(lines):
            pipeline.emit("INFO", f"line {number}")
        waiter = asyncio.ensure_future(pipeline.wait_flushed())
        loop = asyncio.get_running_loop()
        began = loop.time()
        result["unwritten"] = await pipeline.finish(began, lambda n: f"stopped; {n} left")
        result["seconds"] = loop.time() - began
        await asyncio.wait_for(waiter, 1)  # a waiter is released, not left hanging

    # The byte cap drops some of the lines too: their warning must survive the stop.
    pipeline = run_with_flusher(app, daemon, scenario, max_lines=lines, max_bytes=lines * 160)
    unwritten, dropped = result["unwritten"], pipeline.dropped
    messages = [r.message for r in stored(daemon.id)]
    assert 0 < unwritten and 0 < dropped and unwritten + dropped < lines
    assert result["seconds"] < FINAL_GRACE + 0.5  # one batch may overrun the grace, briefly
    # What was written is the start of the stream, then the drop warning and the last line.
    kept = lines - unwritten - dropped
    assert messages == [
        *(f"line {n}" for n in range(kept)),
        DROP_WARNING.format(dropped),
        f"stopped; {unwritten} left",
    ]


def test_the_buffer_caps_come_from_the_environment():
    from stashhog.config import load_config

    defaults = load_config({})
    assert defaults["LOG_BUFFER_LINES"] == 50_000
    assert defaults["LOG_BUFFER_BYTES"] == 32 * 1024 * 1024
    settings = load_config({"STASHHOG_LOG_BUFFER_LINES": "1234", "STASHHOG_LOG_BUFFER_BYTES": "5"})
    assert (settings["LOG_BUFFER_LINES"], settings["LOG_BUFFER_BYTES"]) == (1234, 5)
