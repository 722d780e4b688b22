"""The stop watcher of a worker process: one thread and one Redis pub/sub connection, with a
pattern subscription to every daemon's control channel, handing each command
(``stashhog.control``, which also holds the sending end) to the local instances registered
for that daemon. A process runs one daemon (a prefork child) or a thousand (threads pool):
one connection either way.

A thread with the synchronous client, not ``redis.asyncio``: cancelling an asyncio pub/sub
while it is still subscribing can hang forever (seen with redis-py 8 when a stop arrives a
few milliseconds after start), and a stop must never hang.

Coverage: an instance's ``on_covered`` runs once the pattern subscription is confirmed by
Redis and the instance is registered (whichever comes last), and again after every
resubscription (a stop published while Redis was unreachable is not replayed): the instance
then reads its row and the worker's shutdown mark once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import redis

from stashhog.control import StopCommand, parse_command

logger = logging.getLogger(__name__)
# A read waits this long for a message: a closed connection (Redis restarted) ends it at once
# anyway, and 200 prefork children polling every 0.2 s were 1,000 wakeups a second.
POLL_SECONDS = 5.0
RESUBSCRIBE_PAUSE = 0.5
_GLOB_SPECIALS = "\\*?[]"


@dataclass(eq=False)
class Registration:
    """One local instance listening for its daemon's commands."""

    hub: ControlHub
    channel: str
    deliver: Callable[[StopCommand], None]
    on_covered: Callable[[], None]
    closed: bool = field(default=False)

    def close(self) -> None:
        self.hub.unregister(self)


def glob_escape(text: str) -> str:
    return "".join(f"\\{char}" if char in _GLOB_SPECIALS else char for char in text)


class ControlHub(threading.Thread):
    """``channel_prefix``: the control channels' common start (``control_channel("")``)."""

    def __init__(self, url: str, channel_prefix: str, client_name: str) -> None:
        super().__init__(name="control-hub", daemon=True)
        self.url, self.prefix, self.client_name = url, channel_prefix, client_name
        self.pattern = glob_escape(channel_prefix) + "*"
        self._lock = threading.Lock()
        self._routes: dict[str, set[Registration]] = {}
        self._covered = False
        self.subscriptions = 0  # confirmed (re)subscriptions of this process

    def register(self, channel: str, deliver: Callable[[StopCommand], None],
                 on_covered: Callable[[], None]) -> Registration:  # fmt: skip
        registration = Registration(self, channel, deliver, on_covered)
        with self._lock:
            self._routes.setdefault(channel, set()).add(registration)
            covered = self._covered
            if not self.is_alive():
                self.start()
        if covered:
            on_covered()
        return registration

    def unregister(self, registration: Registration) -> None:
        with self._lock:
            registration.closed = True
            routes = self._routes.get(registration.channel)
            if routes is not None:
                routes.discard(registration)
                if not routes:
                    del self._routes[registration.channel]

    @property
    def registered(self) -> int:
        with self._lock:
            return sum(len(routes) for routes in self._routes.values())

    def run(self) -> None:
        while True:
            try:
                self._listen()
            except (redis.RedisError, OSError):
                logger.warning("control channels lost; resubscribing")
                threading.Event().wait(RESUBSCRIBE_PAUSE)

    def _listen(self) -> None:
        client = redis.Redis.from_url(
            self.url, socket_connect_timeout=2, client_name=self.client_name
        )
        pubsub = client.pubsub()
        try:
            pubsub.psubscribe(self.pattern)
            while True:
                message = pubsub.get_message(timeout=POLL_SECONDS)
                if not message:
                    continue
                if message["type"] == "psubscribe":
                    self._now_covered()
                elif message["type"] == "pmessage":
                    self._dispatch(message["channel"], message["data"])
        finally:
            with self._lock:
                self._covered = False
            pubsub.close()
            client.close()

    def _now_covered(self) -> None:
        with self._lock:
            self._covered = True
            self.subscriptions += 1
            everyone = [reg for routes in self._routes.values() for reg in routes]
        for registration in everyone:
            registration.on_covered()

    def _dispatch(self, channel: bytes | str, data: bytes | str) -> None:
        name = channel.decode() if isinstance(channel, bytes) else channel
        with self._lock:
            targets = list(self._routes.get(name, ()))
        if not targets:
            return  # another process's daemon
        command = parse_command(data)
        if command is None:  # anything else is not ours to act on
            return
        for registration in targets:
            registration.deliver(command)
