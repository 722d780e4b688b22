"""The live event relay behind ``WS /api/daemons/ws``.

One Redis pub/sub subscriber thread per web process listens on ``events.event_pattern()`` and
fans every message out to per-connection queues; each WebSocket connection's own thread (one
gunicorn gthread per open socket, ARCHITECTURE §6) drains its queue into the socket and
answers the client's commands. Queues are bounded: a client that falls ``queue_size`` messages
behind is dropped (its socket shut down) instead of slowing the fan-out for everyone else.

The thread starts with the first WebSocket connection, so Celery workers and the CLI, which
also build the app, never open a subscriber. It reconnects to Redis by itself, and then sends
every client a ``resync`` event: messages published while it was away are lost, so pages
re-read what they show from the REST API.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import socket
import threading
import time
import uuid

import redis
from flask import Flask, current_app
from simple_websocket import ConnectionClosed

from stashhog import events
from stashhog.extensions import sock

logger = logging.getLogger(__name__)

# Messages a connection may lag behind before it is dropped. A daemon_log message carries up
# to 500 lines, so this is a few seconds of a flood and minutes of ordinary traffic.
QUEUE_SIZE = 256
# How often a connection's thread looks for client commands while no event arrives.
COMMAND_POLL_SECONDS = 0.05
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

_CLOSE = object()  # queue sentinel: the relay wants this connection gone


class Connection:
    """One WebSocket client: its queue of outgoing messages and the daemons it follows."""

    def __init__(self, ws, queue_size: int) -> None:
        self.ws = ws
        self.queue: queue.Queue = queue.Queue(maxsize=queue_size)
        # Replaced, never mutated, so the relay thread reads it without a lock.
        self.daemon_ids: frozenset[str] = frozenset()
        self.dropped = False

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
    ) -> None:
        self.redis_url = redis_url
        self.pattern = pattern
        self.broadcast_channel = broadcast_channel
        self.daemon_channel_prefix = daemon_channel_prefix
        self.queue_size = queue_size
        self.client_name = f"stashhog-relay-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.subscribed = threading.Event()
        self.dropped_total = 0
        self._connections: set[Connection] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    def connect(self, ws) -> Connection:
        self._ensure_subscriber()
        conn = Connection(ws, self.queue_size)
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
        conn.daemon_ids = conn.daemon_ids | {daemon_id}
        return {"type": "subscription_confirmed", "daemon_id": daemon_id}
    conn.daemon_ids = conn.daemon_ids - {daemon_id}
    return {"type": "unsubscription_confirmed", "daemon_id": daemon_id}


def _error(message: str, **fields: object) -> dict:
    return {"type": "error", "message": message, **fields}


def serve(ws, conn: Connection) -> None:
    """Send queued events as soon as they arrive; answer commands in between."""
    while not conn.dropped:
        try:
            item = conn.queue.get(timeout=COMMAND_POLL_SECONDS)
        except queue.Empty:
            item = None
        while item is not None:
            if item is _CLOSE:
                return
            ws.send(item)
            try:
                item = conn.queue.get_nowait()
            except queue.Empty:
                item = None
        raw = ws.receive(timeout=0)
        while raw is not None:
            ws.send(json.dumps(answer(conn, raw)))
            raw = ws.receive(timeout=0)


@sock.route("/api/daemons/ws")
def daemons_ws(ws) -> None:
    relay = get_relay()
    conn = relay.connect(ws)
    # Confirming a subscription before Redis is subscribed would let a page catch up from
    # REST and then miss what is published until the subscriber is ready.
    relay.subscribed.wait(SUBSCRIBE_WAIT)
    try:
        serve(ws, conn)
    except (ConnectionClosed, OSError):
        pass  # the client went away, or the relay dropped it
    finally:
        relay.disconnect(conn)


def init_app(app: Flask) -> None:
    with app.app_context():
        relay = Relay(
            app.config["REDIS_URL"],
            pattern=events.event_pattern(),
            broadcast_channel=events.event_channel(events.EventType.DAEMON_STATUS),
            daemon_channel_prefix=events.key("events", "daemon", ""),
        )
    app.extensions["relay"] = relay
    app.config.setdefault("SOCK_SERVER_OPTIONS", {"ping_interval": PING_INTERVAL})
    sock.init_app(app)
