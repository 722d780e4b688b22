"""Following a daemon's log: live lines from Redis, gaps filled from the database.

Pub/sub is best effort, so the database is the record: after every (re)subscribe, after a
batch that does not continue the last one seen (same generation, next ``seq``), and after a
quiet spell, the lines after the last id seen are read from the database. Ids of one daemon's
lines grow in commit order (one writer at a time, fenced), so ``id > last_id`` prints each
line exactly once.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import click
import redis

from stashhog.events import EventType, event_channel, get_redis
from stashhog.models import LogLevel
from stashhog.services import daemon_queries

# Seconds without a live event after which the database is read anyway (a lost publish).
QUIET_CATCH_UP = 2.0
RECONNECT_DELAY = 1.0
PAGE = 1000


class LogFollower:
    def __init__(self, daemon_id: str, level: str | None, show: Callable[[dict], None]) -> None:
        self.daemon_id = daemon_id
        self.level = level
        self.levels = set(LogLevel.at_least(level)) if level else None
        self.show = show
        self.last_id = 0
        # (generation, seq) of the line at last_id when every line up to it was seen; else None.
        self.position: tuple[int, int] | None = None

    def show_latest(self, since, limit: int) -> None:
        """Print the latest ``limit`` lines, oldest first, and start following after them."""
        newest = daemon_queries.get_logs(self.daemon_id, limit=1)
        if not newest:
            return
        lines = daemon_queries.get_logs(
            self.daemon_id, level=self.level, since=since, before_id=newest[0]["id"] + 1,
            limit=limit,
        )  # fmt: skip
        for line in reversed(lines):
            self.show(line)
        self._mark(newest[0], complete=True)

    def follow(self) -> None:
        """Print new lines until interrupted, riding out Redis outages."""
        while True:
            try:
                self._listen()
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                click.echo(f"warning: Redis connection lost ({exc}); reconnecting", err=True)
                time.sleep(RECONNECT_DELAY)

    def _listen(self) -> None:
        pubsub = get_redis().pubsub()
        try:
            pubsub.subscribe(event_channel(EventType.DAEMON_LOG, self.daemon_id))
            while True:
                self._handle(pubsub.get_message(timeout=QUIET_CATCH_UP))
        finally:
            pubsub.close()

    def _handle(self, message: dict | None) -> None:
        # redis-py re-subscribes by itself after a reconnect; Redis then confirms again.
        if message is None or message["type"] == "subscribe":
            self.catch_up()  # quiet, or (re)subscribed: the database has whatever was missed
        elif message["type"] == "message":
            event = json.loads(message["data"])
            if event.get("type") == EventType.DAEMON_LOG:
                self.receive(event["lines"])

    def receive(self, lines: list[dict]) -> None:
        """One published batch: print it if it continues what was seen, else read the gap."""
        fresh = [line for line in lines if line["id"] > self.last_id]
        if not fresh:
            return
        if self.position is not None and self._continues(fresh[0]):
            for line in fresh:
                self._print(line)
                self._mark(line, complete=True)
            return
        self.catch_up()  # the batch was committed before it was published: the read has it
        if fresh[-1]["id"] >= self.last_id:
            self._mark(fresh[-1], complete=True)

    def catch_up(self) -> None:
        """Print every line after ``last_id`` from the database, page by page."""
        while True:
            lines = daemon_queries.get_logs(
                self.daemon_id, level=self.level, after_id=self.last_id, limit=PAGE, order="asc"
            )
            if not lines:
                return
            for line in lines:
                self.show(line)
                self._mark(line, complete=self.level is None)

    def _continues(self, line: dict) -> bool:
        return (line["generation"], line["seq"] - 1) == self.position

    def _print(self, line: dict) -> None:
        if self.levels is None or line["level"] in self.levels:
            self.show(line)

    def _mark(self, line: dict, *, complete: bool) -> None:
        self.last_id = line["id"]
        self.position = (line["generation"], line["seq"]) if complete else None
