"""The log pipeline's bounded buffer, its drop accounting, backpressure and the final flush
of a stop, in this process, writing to the real PostgreSQL."""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import select

from stashhog.extensions import db
from stashhog.models import DaemonLog
from stashhog.services.daemon_logs import (
    publish_log_lines,
)
from stashhog.services.fencing import Fenced
from workers.log_pipeline import (
    DROP_WARNING,
    FINAL_GRACE,
    LINE_OVERHEAD,
    MIN_FLUSH_GAP,
    LogPipeline,
)


def stored(daemon_id) -> list[DaemonLog]:
    db.session.expire_all()
    query = select(DaemonLog).where(DaemonLog.daemon_id == daemon_id).order_by(DaemonLog.id)
    return list(db.session.scalars(query))


def run_with_flusher(app, daemon, scenario, call_db=None, **caps) -> LogPipeline:
    """Run ``scenario(pipeline)`` beside the pipeline's flusher, as an instance does."""

    async def run_in_thread(fn, *args, **kwargs):
        def run():
            with app.app_context():
                return fn(*args, **kwargs)

        return await asyncio.to_thread(run)

    async def main() -> LogPipeline:
        pipeline = LogPipeline(daemon.id, daemon.generation, call_db or run_in_thread, **caps)
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
        await pipeline.wait_flushed()  # the warning, queued once the first write made room

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


def recording_call_db(app, writes: list, fail_after_commit: int = 0):
    """A ``call_db`` that records (loop time, lines) of each write; the first
    ``fail_after_commit`` writes commit and then raise, as when the commit reply is lost."""
    failures = [fail_after_commit]

    async def call_db(fn, *args, **kwargs):
        def run():
            with app.app_context():
                return fn(*args, **kwargs)

        result = await asyncio.to_thread(run)
        if fn is publish_log_lines:
            return result  # a large batch's publishing, after its write
        writes.append((asyncio.get_running_loop().time(), len(args[-1])))
        if failures[0] > 0:
            failures[0] -= 1
            raise ConnectionError("server closed the connection unexpectedly")
        return result

    return call_db


def run_recorded(app, daemon, scenario, writes: list, **options) -> LogPipeline:
    return run_with_flusher(app, daemon, scenario, recording_call_db(app, writes, **options))


def test_an_idle_pipeline_writes_a_line_at_once(app, make_daemon):
    daemon = make_daemon(generation=1)
    writes, delays = [], []

    async def scenario(pipeline):
        loop = asyncio.get_running_loop()
        for number in range(5):
            await asyncio.sleep(0.05)  # idle: nothing pending, no write in flight
            emitted = loop.time()
            pipeline.emit("INFO", f"line {number}")
            await pipeline.wait_flushed()
            delays.append(writes[-1][0] - emitted)

    run_recorded(app, daemon, scenario, writes)
    assert [r.message for r in stored(daemon.id)] == [f"line {n}" for n in range(5)]
    assert [size for _at, size in writes] == [1] * 5
    # The fixed 100 ms tick this replaced made that ~50 ms on average, up to 100 ms.
    assert sorted(delays)[2] < 0.03 and max(delays) < 0.09, delays


def test_under_load_lines_gather_into_large_batches(app, make_daemon):
    daemon = make_daemon(generation=1)
    writes = []

    async def scenario(pipeline):
        for number in range(30_000):
            pipeline.emit("INFO", f"line {number}")
            if number % 100 == 99:
                await asyncio.sleep(0)  # the flusher runs between emits, as in a daemon
        await pipeline.wait_flushed()

    run_recorded(app, daemon, scenario, writes)
    assert len(stored(daemon.id)) == 30_000
    assert sum(size for _at, size in writes) == 30_000
    assert len(writes) < 60 and max(size for _at, size in writes) >= 2000, writes


def test_a_steady_trickle_costs_at_most_one_write_per_flush_gap(app, make_daemon):
    daemon = make_daemon(generation=1)
    writes, span = [], []

    async def scenario(pipeline):
        loop = asyncio.get_running_loop()
        began = loop.time()
        for number in range(300):  # about 1,000 lines/s
            pipeline.emit("INFO", f"line {number}")
            await asyncio.sleep(0.001)
        await pipeline.wait_flushed()
        span.append(loop.time() - began)

    run_recorded(app, daemon, scenario, writes)
    assert len(stored(daemon.id)) == 300
    # One write (and one published event) per line would be ~300 writes.
    assert len(writes) <= span[0] / MIN_FLUSH_GAP + 2, (len(writes), span)


def test_a_batch_retried_after_a_lost_commit_reply_is_stored_once(app, make_daemon):
    daemon = make_daemon(generation=1)
    writes = []

    async def scenario(pipeline):
        for number in range(50):
            pipeline.emit("INFO", f"line {number}")
        await pipeline.wait_flushed()
        pipeline.emit("INFO", "after the retry")
        await pipeline.wait_flushed()

    pipeline = run_recorded(app, daemon, scenario, writes, fail_after_commit=1)
    rows = stored(daemon.id)
    assert [r.message for r in rows] == [*(f"line {n}" for n in range(50)), "after the retry"]
    assert [r.seq for r in rows] == list(range(1, 52))
    assert len(writes) >= 3 and pipeline.dropped == 0  # the first write was made twice


def test_batches_are_published_in_order_while_the_next_is_written(app, make_daemon):
    import json

    from stashhog.events import EventType, event_channel, get_redis

    daemon = make_daemon(generation=1)
    with app.app_context():
        pubsub = get_redis().pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(event_channel(EventType.DAEMON_LOG, daemon.id))
    writes = []

    async def scenario(pipeline):
        for number in range(20_000):
            pipeline.emit("INFO", f"line {number}")
            if number % 500 == 499:
                await asyncio.sleep(0)
        await pipeline.wait_flushed()

    run_recorded(app, daemon, scenario, writes)
    seqs, ids = [], []
    deadline = time.monotonic() + 10
    while len(seqs) < 20_000 and time.monotonic() < deadline:
        if (message := pubsub.get_message(timeout=0.5)) is not None:
            lines = json.loads(message["data"])["lines"]
            seqs += [line["seq"] for line in lines]
            ids += [line["id"] for line in lines]
    pubsub.close()
    assert len(writes) > 1
    assert seqs == list(range(1, 20_001))
    assert ids == [row.id for row in stored(daemon.id)]


def test_a_stop_whose_final_write_finds_a_successor_counts_its_lines_as_not_written(
    app, make_daemon
):
    """The few lines of a stop go with the last line in one write; when that write finds the
    daemon taken over (fenced), nothing is stored and the daemon's lines count as given up
    on, so the instance can say how many it lost."""
    daemon = make_daemon(generation=1)
    result = {}

    async def scenario(pipeline):
        pipeline.stopping()  # a stop was requested: the few lines wait for finish()
        for number in range(5):
            pipeline.emit("INFO", f"line {number}")
        await asyncio.sleep(0.05)
        with app.app_context():  # a successor took the daemon over meanwhile
            db.session.get(type(daemon), daemon.id).generation = 2
            db.session.commit()
        loop = asyncio.get_running_loop()
        try:
            await pipeline.finish(loop.time() + 1, lambda n: "stopped")
        except Fenced:
            result["fenced"] = True

    pipeline = run_with_flusher(app, daemon, scenario)
    assert result == {"fenced": True}
    assert stored(daemon.id) == [] and pipeline.written == 0
    assert pipeline.discarded == 5 and not pipeline.pending


def test_lines_a_stop_gave_up_on_still_count_when_its_last_line_finds_a_successor(app, make_daemon):
    """Cut off from the database at its stop, the instance gives up on its lines at the
    deadline; its last write, after the heal, finds the daemon taken over: the lines it gave
    up on are still counted (the worker's log says how many), nothing is stored."""
    daemon = make_daemon(generation=1)
    state = {"down_until": 0.0, "healed": False}

    async def call_db(fn, *args, **kwargs):
        def run():
            if time.monotonic() < state["down_until"]:
                raise RuntimeError("connection refused")  # a passing database error
            with app.app_context():
                if not state["healed"]:  # the successor claimed during the cut
                    state["healed"] = True
                    db.session.get(type(daemon), daemon.id).generation = 2
                    db.session.commit()
                return fn(*args, **kwargs)

        return await asyncio.to_thread(run)

    async def scenario(pipeline):
        pipeline.stopping()
        for number in range(5):
            pipeline.emit("INFO", f"line {number}")
        loop = asyncio.get_running_loop()
        state["down_until"] = time.monotonic() + FINAL_GRACE + 0.3
        try:
            await pipeline.finish(loop.time(), lambda n: f"stopped; {n} left")
        except Fenced:
            state["fenced"] = True

    pipeline = run_with_flusher(app, daemon, scenario, call_db=call_db)
    assert state["fenced"] and stored(daemon.id) == []
    assert pipeline.discarded == 5 and pipeline.written == 0
