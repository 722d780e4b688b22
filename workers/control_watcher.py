"""The stop watcher: a thread that listens on a daemon's control channel and hands each
command (``stashhog.control``, which also holds the sending end) to the instance.

A thread with the synchronous client, not ``redis.asyncio``: cancelling an asyncio pub/sub
while it is still subscribing can hang forever (seen with redis-py 8 when a stop arrives a
few milliseconds after start), and a stop must never hang.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import redis

from stashhog.control import StopCommand, parse_command

logger = logging.getLogger(__name__)
POLL_SECONDS = 0.2


class ControlWatcher(threading.Thread):
    def __init__(self, url: str, channel: str, deliver: Callable[[StopCommand], None],
                 on_subscribed: Callable[[], None]) -> None:  # fmt: skip
        super().__init__(name=f"control-{channel}", daemon=True)
        self.url, self.channel = url, channel
        self.deliver, self.on_subscribed = deliver, on_subscribed
        self._done = threading.Event()

    def stop(self) -> None:
        self._done.set()

    def run(self) -> None:
        while not self._done.is_set():
            try:
                self._listen()
            except redis.RedisError:
                logger.warning("control channel %s lost; resubscribing", self.channel)
                self._done.wait(0.5)

    def _listen(self) -> None:
        client = redis.Redis.from_url(self.url, socket_connect_timeout=2)
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            pubsub.subscribe(self.channel)
            self.on_subscribed()
            while not self._done.is_set():
                message = pubsub.get_message(timeout=POLL_SECONDS)
                if message and message["type"] == "message":
                    command = parse_command(message["data"])
                    if command is not None:  # anything else is not ours to act on
                        self.deliver(command)
        finally:
            pubsub.close()
            client.close()
