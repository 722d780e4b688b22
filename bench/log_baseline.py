"""What ``bench.log_throughput`` compares the shipped pipeline with, on the same table in the
same run: the original StashHog pattern (a session, INSERT, commit and publish per line) and
COPY alone (the same lines, of the same shape, COPY'd in one statement with nothing else:
no fencing, no ids read back, no publishing; the rows are built before the clock starts).
"""

from __future__ import annotations

import io
import time
from datetime import UTC, datetime

import psutil
from sqlalchemy.orm import Session

from bench.harness import BenchServices, backend_pids, cpu_seconds, poll
from bench.log_cases import Result, Subscriber, cpu_used
from stashhog.events import EventType, event_channel, publish
from stashhog.extensions import db
from stashhog.models import DaemonLog
from stashhog.serializers import iso

COPY_SQL = "COPY daemon_logs (daemon_id, generation, level, message, created_at, seq) FROM STDIN"


def run_baseline(bench: BenchServices, seconds: float) -> Result:
    """The original pattern: per line, a new session, INSERT, commit, then publish."""
    daemon_id = bench.create_daemon("TEST_BURST", {"lines": 0}, name="bench-baseline")
    with bench.app.app_context():
        subscriber = Subscriber(bench.redis_url, event_channel(EventType.DAEMON_LOG, daemon_id))
        result = Result("baseline: session+commit+publish per line", 0)
        conn = bench.pg_connect()
        own = psutil.Process()
        cpu_before = cpu_seconds([own.pid, *backend_pids(conn)])
        began = time.time()
        number = 0
        while time.time() - began < seconds:
            with Session(db.engine, expire_on_commit=False) as session:
                line = DaemonLog(
                    daemon_id=daemon_id,
                    level="INFO",
                    message=f"line {number}",
                    created_at=datetime.now(UTC),
                )
                session.add(line)
                session.commit()
            publish(
                EventType.DAEMON_LOG,
                daemon_id,
                lines=[
                    {
                        "id": line.id,
                        "daemon_id": str(daemon_id),
                        "level": line.level,
                        "message": line.message,
                        "created_at": iso(line.created_at),
                    }
                ],
            )
            number += 1
        result.persisted_at = time.time()
        poll(lambda: subscriber.lines >= number, 5.0, 0.002)
        result.worker_cpu, result.postgres_cpu = cpu_used(cpu_before, own.pid, backend_pids(conn))
        conn.close()
        subscriber.close()
    result.lines = result.rows = result.distinct = number
    result.emitted_from = began
    result.published, result.published_at = subscriber.lines, subscriber.last
    result.latencies = subscriber.latencies
    result.batches = [1] * number
    return result


def run_copy_alone(bench: BenchServices, lines: int) -> Result:
    """``lines`` lines shaped as TEST_BURST's ("line N", INFO, one generation, seq 1..N) in
    one COPY into daemon_logs and one commit: the database's own ingest limit here."""
    daemon_id = bench.create_daemon("TEST_BURST", {"lines": 0}, name="bench-copy-alone")
    now = datetime.now(UTC).isoformat()
    rows = "".join(f"{daemon_id}\t1\tINFO\tline {n}\t{now}\t{n + 1}\n" for n in range(lines))
    data = rows.encode()
    result = Result("COPY alone (same lines, one statement)", lines)
    conn = bench.pg_connect()
    try:
        cpu_before = cpu_seconds([psutil.Process().pid, *backend_pids(conn)])
        began = time.time()
        with conn.cursor() as cursor:
            cursor.copy_expert(COPY_SQL, io.BytesIO(data), size=len(data))
        conn.commit()
        result.persisted_at = time.time()
        result.worker_cpu, result.postgres_cpu = cpu_used(
            cpu_before, psutil.Process().pid, backend_pids(conn)
        )
    finally:
        conn.close()
    result.emitted_from = began
    result.rows = result.distinct = lines
    result.batches = [lines]
    return result
