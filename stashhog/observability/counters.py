"""Log lines stored, by daemon and level, as Redis counters: /metrics reads them at scrape time
instead of counting millions of rows. They restart from zero with Redis, as a Prometheus
counter may."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import redis

from stashhog.events import get_redis, key


def count_log_lines(daemon_id: object, levels: Iterable[str]) -> None:
    counts = Counter(levels)
    if not counts:
        return
    try:
        pipe = get_redis().pipeline(transaction=False)
        for level, count in counts.items():
            pipe.hincrby(key("metrics", "log_lines", daemon_id), level, count)
        pipe.execute()
    except redis.RedisError:
        pass  # best effort, like the live events beside it


def log_line_counts(daemon_ids: list[str]) -> dict[str, dict[str, int]]:
    pipe = get_redis().pipeline(transaction=False)
    for daemon_id in daemon_ids:
        pipe.hgetall(key("metrics", "log_lines", daemon_id))
    return {
        daemon_id: {level.decode(): int(value) for level, value in found.items()}
        for daemon_id, found in zip(daemon_ids, pipe.execute(), strict=True)
    }
