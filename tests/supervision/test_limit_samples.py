"""The supervisor reads the resource-limit samples of every limited daemon in one query
(``daemon_limits.latest_samples``): the same answer as one query a daemon."""

from __future__ import annotations

from datetime import UTC, datetime

from stashhog.extensions import db
from stashhog.models import DaemonMetric
from stashhog.services import daemon_limits
from stashhog.services.daemon_queries import find_daemon_row


def sample(daemon, generation: int, rss: int, resolution: int = 0) -> None:
    db.session.add(DaemonMetric(daemon_id=daemon.id, generation=generation, rss=rss,
                                cpu_percent=rss / 10, threads=1, open_files=1,
                                resolution=resolution, created_at=datetime.now(UTC)))  # fmt: skip


def test_batched_samples_equal_one_query_a_daemon(make_daemon):
    many = make_daemon(status="RUNNING", desired_state="RUNNING", generation=2, max_memory_mb=64)
    few = make_daemon(status="RUNNING", desired_state="RUNNING", generation=1, max_cpu_percent=50)
    none = make_daemon(status="RUNNING", desired_state="RUNNING", generation=3, max_memory_mb=64)
    unlimited = make_daemon(status="RUNNING", desired_state="RUNNING", generation=1)
    for rss in range(1, 7):
        sample(many, 2, rss)
    sample(many, 1, 100)  # an earlier instance's
    sample(many, 2, 200, resolution=60)  # a rollup
    sample(few, 1, 7)
    sample(few, 1, 8)
    sample(none, 2, 9)  # not its current generation
    sample(unlimited, 1, 10)
    db.session.commit()
    rows = [find_daemon_row(d.id) for d in (many, few, none, unlimited)]
    limited = daemon_limits.enforced(rows)
    assert [row.id for row in limited] == [many.id, few.id, none.id]
    batched = daemon_limits.latest_samples(limited)
    assert batched == {row.id: daemon_limits._latest_samples(row) for row in limited}
    assert [s["rss"] for s in batched[many.id]] == [4, 5, 6]  # the newest three, oldest first
    assert [s["rss"] for s in batched[few.id]] == [7, 8]
    assert batched[none.id] == []
