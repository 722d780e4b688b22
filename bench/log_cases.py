"""The daemon-driven cases of ``bench.log_throughput``: one real daemon on a real prefork
``daemons`` worker, followed until every line it emitted is stored (polled on a connection of
its own) and published (a subscriber thread on its ``daemon_log`` channel), or counted as
dropped; then its counts, batches (rows sharing an ``xmin`` were written by one flush), CPU
and memory are read back.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime

import psutil
import redis

from bench.harness import BenchServices, backend_pids, cpu_seconds, poll
from stashhog.events import EventType, event_channel
from stashhog.services.daemon_control import start_daemon, stop_daemon

LAST_SQL = (
    "SELECT seq, created_at FROM daemon_logs WHERE daemon_id = %s AND generation = %s "
    "ORDER BY id DESC LIMIT 1"
)
STATS_SQL = (
    "SELECT count(*), count(DISTINCT seq), min(created_at), max(created_at) FROM daemon_logs "
    "WHERE daemon_id = %s AND generation = %s AND message LIKE %s"
)
# Drop warnings are few and on the (daemon_id, level, id) index: cheap to poll.
WARNINGS_SQL = (
    "SELECT count(*), coalesce(sum(split_part(message, ' ', 1)::bigint), 0) FROM daemon_logs "
    "WHERE daemon_id = %s AND generation = %s AND level = 'WARNING' "
    "AND message LIKE '%% lines dropped: %%'"
)
ROW_SQL = "SELECT status_line, log_lines_dropped FROM daemons WHERE id = %s"
# One probe of the unique (daemon_id, generation, seq) index. The newest line by id (LAST_SQL)
# walks back over the batch being written (its ids are taken first, and its rows are in the
# index uncommitted): every 2 ms that cost PostgreSQL more CPU than the COPY it measured.
STORED_SQL = "SELECT 1 FROM daemon_logs WHERE daemon_id = %s AND generation = %s AND seq = %s"
MB = 1024 * 1024
BATCH_SQL = (
    "SELECT count(*) FROM daemon_logs WHERE daemon_id = %s AND generation = %s "
    "AND message LIKE %s GROUP BY xmin::text ORDER BY min(id)"
)


class Subscriber:
    """Counts lines on a daemon's ``daemon_log`` channel, in a thread of its own."""

    def __init__(self, redis_url: str, channel: str, prefix: str = "") -> None:
        self.prefix = prefix  # only lines whose message starts with it are counted
        self.client = redis.Redis.from_url(redis_url)
        self.pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        self.pubsub.subscribe(channel)
        self.lines = self.messages = 0
        self.first = self.last = 0.0
        self.latencies: list[float] = []  # ms, first line of each message
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                message = self.pubsub.get_message(timeout=0.05)
                if message is not None:
                    self._count(time.time(), json.loads(message["data"])["lines"])
        except redis.RedisError as exc:
            self.error = repr(exc)

    def _count(self, received: float, lines: list[dict]) -> None:
        counted = sum(1 for line in lines if line["message"].startswith(self.prefix))
        if not counted:
            return  # e.g. the "started"/"stopped" lines around the measured ones
        self.first = self.first or received
        self.last = received
        self.messages += 1
        self.lines += counted
        created = datetime.fromisoformat(lines[0]["created_at"]).timestamp()
        self.latencies.append((received - created) * 1000)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.pubsub.close()
        self.client.close()


@dataclass
class Result:
    label: str
    lines: int
    emitted_from: float = 0.0
    emitted_to: float = 0.0
    persisted_at: float = 0.0
    rows: int = 0
    distinct: int = 0
    published: int = 0
    published_at: float = 0.0
    batches: list[int] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    dropped: int = 0
    rss_before: int = 0
    rss_peak: int = 0
    lags: list[float] = field(default_factory=list)  # s, newest stored line vs now
    worker_cpu: float = 0.0
    postgres_cpu: float = 0.0
    notes: list[str] = field(default_factory=list)

    def rate(self, until: float, count: int | None = None) -> float:
        """Lines per second from the first line's ``created_at`` to ``until``."""
        count = self.lines if count is None else count
        return count / (until - self.emitted_from) if until > self.emitted_from else 0.0


class Watch:
    """Follows one instance until every line it emitted is stored or counted as dropped:
    once the daemon says it is done, whether its last line is stored, every poll; the row,
    the drop warnings, the pool child's RSS and the newest line's age every
    ``SAMPLE_SECONDS``."""

    SAMPLE_SECONDS = 0.2

    def __init__(self, cursor, daemon_id, generation: int, pid: int, result: Result) -> None:
        self.cursor, self.key = cursor, (str(daemon_id), generation)
        self.daemon_id, self.result = str(daemon_id), result
        self.child = psutil.Process(pid)
        self.emitted = False
        self.final_seq: int | None = None  # seq of the last line the pipeline will write
        self.next_sample = 0.0

    def done(self) -> bool:
        if time.monotonic() >= self.next_sample:
            self.next_sample = time.monotonic() + self.SAMPLE_SECONDS
            self._sample()
        if self.final_seq is None:
            return False
        self.cursor.execute(STORED_SQL, (*self.key, self.final_seq))
        return self.cursor.fetchone() is not None

    def _sample(self) -> None:
        self.result.rss_peak = max(self.result.rss_peak, self.child.memory_info().rss)
        if not self.emitted:
            self.cursor.execute(LAST_SQL, self.key)
            if (row := self.cursor.fetchone()) is not None:
                self.result.lags.append(time.time() - row[1].timestamp())
        self.cursor.execute(ROW_SQL, (self.daemon_id,))
        status_line, dropped = self.cursor.fetchone()
        # The daemon says "emitted N lines" after its last line: no line is dropped after it.
        self.emitted = self.emitted or "emitted" in (status_line or "")
        if self.emitted and self.final_seq is None:
            self.cursor.execute(WARNINGS_SQL, self.key)
            warnings, reported = self.cursor.fetchone()
            if reported == dropped:  # the last drop warning is in too
                self.result.dropped = dropped
                # "started on generation N", the lines kept, and the warnings, one seq each.
                self.final_seq = 1 + self.result.lines - dropped + warnings


def run_daemon_case(bench: BenchServices, label, type_, config, lines, match, timeout) -> Result:
    """Start one daemon, wait until each of its ``lines`` lines is in the database (and on
    the channel) or counted as dropped, stop it, and read back counts and batches."""
    daemon_id = bench.create_daemon(type_, config)
    with bench.app.app_context():
        channel = event_channel(EventType.DAEMON_LOG, daemon_id)
        subscriber = Subscriber(bench.redis_url, channel, match.rstrip("%"))
    result = Result(label, lines)
    conn = bench.pg_connect()
    cursor = conn.cursor()
    try:
        children = {child.pid: child for worker in bench.workers for child in worker.children()}
        rss_before = {pid: child.memory_info().rss for pid, child in children.items()}
        cpu_before = cpu_seconds(list(children) + backend_pids(conn))
        with bench.app.app_context():
            daemon = start_daemon(daemon_id, wait=10)["daemon"]
        result.rss_before = rss_before.get(daemon["worker_pid"], 0)
        watch = Watch(cursor, daemon_id, daemon["generation"], daemon["worker_pid"], result)
        if not poll(watch.done, timeout, 0.002):
            result.notes.append(f"lines neither persisted nor dropped within {timeout} s")
        result.persisted_at = time.time()
        poll(lambda: subscriber.lines >= lines - result.dropped, 10.0, 0.002)
        generation = daemon["generation"]
        result.worker_cpu, result.postgres_cpu = cpu_used(
            cpu_before, daemon["worker_pid"], backend_pids(conn)
        )
        with bench.app.app_context():
            stop_daemon(daemon_id, wait=10)
        cursor.execute(STATS_SQL, (str(daemon_id), generation, match))
        result.rows, result.distinct, first, last = cursor.fetchone()
        result.emitted_from, result.emitted_to = first.timestamp(), last.timestamp()
        cursor.execute(BATCH_SQL, (str(daemon_id), generation, match))
        result.batches = [count for (count,) in cursor.fetchall()]
    finally:
        subscriber.close()
        conn.close()
    result.published, result.published_at = subscriber.lines, subscriber.last
    result.latencies = subscriber.latencies
    if subscriber.error:
        result.notes.append(f"subscriber: {subscriber.error}")
    return result


def cpu_used(before: dict[int, float], worker_pid: int, backends: list[int]):
    """CPU seconds since ``before`` of the pool child that ran the daemon, and of all the
    database's backends (a backend that appeared since counts from zero)."""
    after = cpu_seconds([worker_pid, *backends])
    worker = after.get(worker_pid, 0.0) - before.get(worker_pid, 0.0)
    postgres = sum(after[pid] - before.get(pid, 0.0) for pid in backends if pid in after)
    return worker, postgres
