"""The live event relay behind ``WS /api/daemons/ws``.

One Redis pub/sub subscriber thread per web process listens on ``events.event_pattern()`` and
fans every message out to per-connection queues. Each connection has a writer (the request's
own greenlet or thread) that sends what its queue holds as soon as it arrives, and a reader
that answers the client's commands; neither polls. Under the production worker (gevent, see
``stashhog.webserver``) both are greenlets, so open sockets never use up request threads.
Queues are bounded: a client that falls ``queue_size`` messages behind is dropped (its socket
shut down) instead of slowing the fan-out for everyone else.

Access is checked before the upgrade by the one policy (``stashhog.auth.policy``: credentials,
and an ``Origin`` of the panel's own), and again at each subscription (a user deleted or
demoted, or a token revoked, since then may not follow anything new).

Limits, so that one process stays healthy whatever clients do: at most ``MAX_WEBSOCKETS``
sockets (more are refused with 503 before the upgrade), inbound messages of at most
``WS_MAX_MESSAGE_BYTES`` (a larger frame closes the socket with 1009), and at most
``WS_MAX_SUBSCRIPTIONS`` daemons followed per socket.

The thread starts with the first WebSocket connection, so Celery workers and the CLI, which
also build the app, never open a subscriber. It reconnects to Redis by itself, and then sends
every client a ``resync`` event: messages published while it was away are lost, so pages
re-read what they show from the REST API.

Clients find the protocol (commands, replies, events, limits) in the OpenAPI document, as
``GET /api/daemons/ws`` (``stashhog.api.openapi_described``): keep the two in step.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import socket
import threading
import time
import uuid
from collections.abc import Callable

import redis
from flask import Flask, current_app, g, request
from simple_websocket import ConnectionClosed

from stashhog import events
from stashhog.api.errors import error_response
from stashhog.auth.policy import subscription_check
from stashhog.extensions import sock

logger = logging.getLogger(__name__)

# Messages a connection may lag behind before it is dropped. A daemon_log message carries up
# to 500 lines, so this is a few seconds of a flood and minutes of ordinary traffic.
QUEUE_SIZE = 256
# WebSocket-level ping: a client that does not answer within this is closed as dead.
PING_INTERVAL = 25
# Backoff between attempts to reach Redis again after the subscriber lost it.
RECONNECT_DELAYS = (0.1, 0.25, 0.5, 1.0, 2.0)

# A subscriber only reads, so a Redis that vanished without a reset is noticed by TCP
# keepalive: after about 10 + 3 x 5 seconds of silence instead of the kernel's two hours.
KEEPALIVE = {
    option: value
    for name, value in (("TCP_KEEPIDLE", 10), ("TCP_KEEPINTVL", 5), ("TCP_KEEPCNT", 3))
    if (option := getattr(socket, name, None)) is not None
}
# How long a new connection waits for the subscriber before its commands are answered.
SUBSCRIBE_WAIT = 5.0

# flask-sock registers its routes on a blueprint of its own.
WS_ENDPOINT = "__flask_sock.daemons_ws"
_CLOSE = object()  # queue sentinel: the relay wants this connection gone


class Connection:
    """One WebSocket client: its queue of outgoing messages and the daemons it follows."""

    def __init__(self, ws, queue_size: int, max_subscriptions: int) -> None:
        self.ws = ws
        self.queue: queue.Queue = queue.Queue(maxsize=queue_size)
        # Replaced, never mutated, so the relay thread reads it without a lock.
        self.daemon_ids: frozenset[str] = frozenset()
        self.max_subscriptions = max_subscriptions
        self.dropped = False
        # May this socket's actor (still) subscribe? Set by the route (stashhog.auth.policy).
        self.may_subscribe: Callable[[], bool] = lambda: True

    def offer(self, message: object) -> bool:
        try:
            self.queue.put_nowait(message)
        except queue.Full:
            return False
        return True

    def drop(self) -> None:
        """Shut the socket down: this also unblocks a send stuck on a client that stopped
        reading, so the connection's thread ends at once."""
        self.dropped = True
        self.offer(_CLOSE)
        try:
            self.ws.sock.shutdown(socket.SHUT_RDWR)
        except (AttributeError, OSError):
            pass


class Relay:
    """The per-process Redis subscriber and the set of connected clients."""

    def __init__(
        self,
        redis_url: str,
        pattern: str,
        broadcast_channel: str,
        daemon_channel_prefix: str,
        queue_size: int = QUEUE_SIZE,
        max_connections: int = 500,
        max_subscriptions: int = 100,
    ) -> None:
        self.redis_url = redis_url
        self.pattern = pattern
        self.broadcast_channel = broadcast_channel
        self.daemon_channel_prefix = daemon_channel_prefix
        self.queue_size = queue_size
        self.max_connections = max_connections
        self.max_subscriptions = max_subscriptions
        self.client_name = f"stashhog-relay-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.subscribed = threading.Event()
        self.dropped_total = 0
        self.refused_total = 0
        self._reserved = 0
        self._connections: set[Connection] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    def reserve(self) -> bool:
        """Take a socket slot before the upgrade; False when the process is full."""
        with self._lock:
            if self._reserved >= self.max_connections:
                self.refused_total += 1
                return False
            self._reserved += 1
            return True

    def release(self) -> None:
        with self._lock:
            self._reserved -= 1

    def connect(self, ws) -> Connection:
        self._ensure_subscriber()
        conn = Connection(ws, self.queue_size, self.max_subscriptions)
        with self._lock:
            self._connections.add(conn)
        return conn

    def disconnect(self, conn: Connection) -> None:
        with self._lock:
            self._connections.discard(conn)

    def _ensure_subscriber(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="stashhog-relay", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        failures = 0
        while True:
            try:
                self._listen(resync=failures > 0)
            except Exception as exc:  # whatever broke, the relay must come back by itself
                self.subscribed.clear()
                delay = RECONNECT_DELAYS[min(failures, len(RECONNECT_DELAYS) - 1)]
                failures += 1
                expected = isinstance(exc, redis.RedisError | OSError)
                logger.warning("relay lost Redis (%r); reconnecting in %.2fs", exc, delay,
                               exc_info=not expected)  # fmt: skip
                time.sleep(delay)

    def _listen(self, *, resync: bool) -> None:
        client = redis.Redis.from_url(
            self.redis_url,
            client_name=self.client_name,
            socket_connect_timeout=2,
            socket_keepalive=True,
            socket_keepalive_options=KEEPALIVE,
            health_check_interval=10,
        )
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            pubsub.psubscribe(self.pattern)
            self.subscribed.set()
            if resync:
                self.broadcast(events.encode_event("resync", None, reason="relay reconnected"))
            while True:
                message = pubsub.get_message(timeout=1.0)
                if message is not None:
                    self.fan_out(message["channel"].decode(), message["data"].decode())
                    # Let the writers send it: under gevent nothing else runs until this
                    # greenlet blocks, and a burst (what Redis retransmits after a partition
                    # heals: 350 messages) filled every queue and dropped every viewer.
                    time.sleep(0)
        finally:
            pubsub.close()
            client.close()

    def fan_out(self, channel: str, data: str) -> None:
        """Route one event by its channel: broadcast, or the daemon's subscribers only."""
        if channel == self.broadcast_channel:
            self.broadcast(data)
        elif channel.startswith(self.daemon_channel_prefix):
            daemon_id = channel[len(self.daemon_channel_prefix) :]
            self.broadcast(data, daemon_id=daemon_id)

    def broadcast(self, data: str, daemon_id: str | None = None) -> None:
        with self._lock:
            targets = list(self._connections)
        for conn in targets:
            if daemon_id is not None and daemon_id not in conn.daemon_ids:
                continue
            if not conn.offer(data):
                self._drop_slow(conn)

    def _drop_slow(self, conn: Connection) -> None:
        self.disconnect(conn)
        self.dropped_total += 1
        logger.warning("dropping a WebSocket client %d messages behind", self.queue_size)
        conn.drop()


def get_relay() -> Relay:
    return current_app.extensions["relay"]


def answer(conn: Connection, raw: str | bytes) -> dict:
    """The reply to one client message; a bad message gets an error, never a disconnect."""
    try:
        message = json.loads(raw)
    except (TypeError, ValueError):
        return _error("message is not valid JSON")
    if not isinstance(message, dict):
        return _error("message must be a JSON object")
    if message.get("type") == "ping":
        return {"type": "pong"}
    command = message.get("command")
    if command not in ("subscribe", "unsubscribe"):
        return _error('expected {"command": "subscribe"|"unsubscribe"} or {"type": "ping"}')
    try:
        daemon_id = str(uuid.UUID(str(message.get("daemon_id"))))
    except ValueError:
        return _error("daemon_id must be a UUID", command=command)
    if command == "subscribe":
        if not conn.may_subscribe():
            return _error("not allowed: sign in again", command=command)
        if daemon_id not in conn.daemon_ids and len(conn.daemon_ids) >= conn.max_subscriptions:
            limit = conn.max_subscriptions
            return _error(f"at most {limit} subscriptions per connection", command=command)
        conn.daemon_ids = conn.daemon_ids | {daemon_id}
        return {"type": "subscription_confirmed", "daemon_id": daemon_id}
    conn.daemon_ids = conn.daemon_ids - {daemon_id}
    return {"type": "unsubscription_confirmed", "daemon_id": daemon_id}


def _error(message: str, **fields: object) -> dict:
    return {"type": "error", "message": message, **fields}


def serve(ws, conn: Connection) -> None:
    """Send queued events as soon as they arrive, until the connection ends."""
    reader = threading.Thread(target=answer_commands, args=(ws, conn), daemon=True)
    reader.start()
    while (item := conn.queue.get()) is not _CLOSE:
        ws.send(item)


def answer_commands(ws, conn: Connection) -> None:
    """Read the client's messages and queue each answer behind the events already queued
    (one writer per socket). Ends the connection when the client goes away."""
    try:
        while True:
            reply = json.dumps(answer(conn, ws.receive()))
            if not conn.offer(reply):
                conn.drop()
                return
    except (ConnectionClosed, OSError):
        pass
    conn.dropped = True
    while not conn.offer(_CLOSE):  # a full queue: make room, the client is gone anyway
        with contextlib.suppress(queue.Empty):
            conn.queue.get_nowait()


@sock.route("/api/daemons/ws")
def daemons_ws(ws) -> None:
    relay = get_relay()
    conn = relay.connect(ws)
    conn.may_subscribe = subscription_check()
    # Confirming a subscription before Redis is subscribed would let a page catch up from
    # REST and then miss what is published until the subscriber is ready.
    relay.subscribed.wait(SUBSCRIBE_WAIT)
    try:
        serve(ws, conn)
    except (ConnectionClosed, OSError):
        pass  # the client went away, or the relay dropped it
    finally:
        relay.disconnect(conn)


def reserve_socket():
    """Before the upgrade: refuse a socket the process has no room for, with a 503."""
    if request.endpoint != WS_ENDPOINT:
        return None
    if not get_relay().reserve():
        limit = get_relay().max_connections
        return error_response(503, "unavailable", f"this web process holds {limit} live viewers")
    g.relay_slot = True
    return None


def release_socket(_exc: BaseException | None) -> None:
    if g.pop("relay_slot", False):
        get_relay().release()


def init_app(app: Flask) -> None:
    with app.app_context():
        relay = Relay(
            app.config["REDIS_URL"],
            pattern=events.event_pattern(),
            broadcast_channel=events.event_channel(events.EventType.DAEMON_STATUS),
            daemon_channel_prefix=events.key("events", "daemon", ""),
            max_connections=app.config["MAX_WEBSOCKETS"],
            max_subscriptions=app.config["WS_MAX_SUBSCRIPTIONS"],
        )
    app.extensions["relay"] = relay
    app.config.setdefault(
        "SOCK_SERVER_OPTIONS",
        {"ping_interval": PING_INTERVAL, "max_message_size": app.config["WS_MAX_MESSAGE_BYTES"]},
    )
    app.before_request(reserve_socket)
    app.teardown_request(release_socket)
    sock.init_app(app)
