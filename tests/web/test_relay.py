"""The WebSocket relay, end to end: a real Redis, the app under a real threaded server, and
real WebSocket clients (websocket-client)."""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid

import pytest
import redis
import websocket

from stashhog import create_app, events
from stashhog.auth import tokens
from stashhog.auth.roles import Role
from stashhog.events import EventType
from tests.support.access import login, username_for
from tests.support.wait import eventually

REPLY_TYPES = {"pong", "subscription_confirmed", "unsubscription_confirmed", "error"}


class Client:
    """A WebSocket client that speaks JSON."""

    def __init__(self, url: str, **options) -> None:
        self.ws = websocket.create_connection(url, timeout=5, **options)

    def send(self, message) -> None:
        self.ws.send(message if isinstance(message, str) else json.dumps(message))

    def recv(self, timeout: float = 5.0) -> dict:
        self.ws.settimeout(timeout)
        return json.loads(self.ws.recv())

    def ask(self, message) -> dict:
        """Send a command and return its reply, skipping events published meanwhile."""
        self.send(message)
        while True:
            reply = self.recv()
            if reply["type"] in REPLY_TYPES:
                return reply

    def subscribe(self, daemon_id: str) -> None:
        assert self.ask({"command": "subscribe", "daemon_id": daemon_id}) == {
            "type": "subscription_confirmed",
            "daemon_id": daemon_id,
        }

    def expect(self, timeout: float = 5.0, **fields) -> dict:
        """The next message with these fields; others (events of other tests) are skipped."""
        deadline = time.monotonic() + timeout
        while True:
            message = self.recv(max(deadline - time.monotonic(), 0.01))
            if all(message.get(key) == value for key, value in fields.items()):
                return message

    def nothing_within(self, seconds: float, **fields) -> bool:
        """True if no message with these fields arrives within ``seconds``."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self.ws.settimeout(left)
            try:
                message = json.loads(self.ws.recv())
            except websocket.WebSocketTimeoutException:
                return True
            if all(message.get(key) == value for key, value in fields.items()):
                return False
        return True

    def close(self) -> None:
        self.ws.close()


@pytest.fixture
def connect(live_server, relay, role_tokens):
    """Open a socket as a viewer (a script's bearer token): the least a viewer of the panel
    needs."""
    clients: list[Client] = []

    def make(**options) -> Client:
        options.setdefault("header", [f"Authorization: Bearer {role_tokens[Role.VIEWER]}"])
        client = Client(live_server.ws_url, **options)
        clients.append(client)
        # The handshake completes before the server registers the connection; an answer
        # proves it is registered (and that the relay is subscribed to Redis).
        assert client.ask({"type": "ping"}) == {"type": "pong"}
        assert relay.subscribed.is_set()
        return client

    yield make
    for client in clients:
        try:
            client.close()
        except Exception:
            pass


@pytest.fixture
def publish(app):
    def send(event_type: str, daemon_id: str | None = None, **fields) -> None:
        with app.app_context():
            events.publish(event_type, daemon_id, **fields)

    return send


def test_ping_is_answered_with_pong(connect):
    assert connect().ask({"type": "ping"}) == {"type": "pong"}


def test_subscribe_and_unsubscribe_are_confirmed(connect):
    client = connect()
    daemon_id = str(uuid.uuid4())
    client.subscribe(daemon_id)
    assert client.ask({"command": "unsubscribe", "daemon_id": daemon_id}) == {
        "type": "unsubscription_confirmed",
        "daemon_id": daemon_id,
    }


@pytest.mark.parametrize(
    "message",
    [
        "not json",
        "[1, 2]",
        {"command": "dance"},
        {"type": "pong"},
        {"command": "subscribe"},
        {"command": "subscribe", "daemon_id": "not-a-uuid"},
    ],
)
def test_a_bad_message_gets_an_error_and_the_connection_stays_open(connect, message):
    client = connect()
    reply = client.ask(message)
    assert reply["type"] == "error" and reply["message"]
    assert client.ask({"type": "ping"}) == {"type": "pong"}


@pytest.mark.parametrize(
    "event_type", [EventType.DAEMON_STATUS, EventType.DAEMON_UPDATE, EventType.JOB_UPDATE]
)
def test_broadcast_events_reach_every_client(connect, publish, event_type):
    first, second = connect(), connect()
    daemon_id = str(uuid.uuid4())
    first.subscribe(str(uuid.uuid4()))  # following another daemon changes nothing

    publish(event_type, daemon_id, marker="m1")

    for client in (first, second):
        message = client.expect(marker="m1")
        assert message["type"] == event_type
        assert message["daemon_id"] == daemon_id


@pytest.mark.parametrize("event_type", [EventType.DAEMON_LOG, EventType.DAEMON_JOB_ACTION])
def test_daemon_events_reach_only_that_daemons_subscribers(connect, publish, event_type):
    follower, other, idle = connect(), connect(), connect()
    daemon_id = str(uuid.uuid4())
    follower.subscribe(daemon_id)
    other.subscribe(str(uuid.uuid4()))

    publish(event_type, daemon_id, marker="for-followers")
    assert follower.expect(daemon_id=daemon_id)["marker"] == "for-followers"
    assert other.nothing_within(0.3, daemon_id=daemon_id)
    assert idle.nothing_within(0.1, daemon_id=daemon_id)

    follower.send({"command": "unsubscribe", "daemon_id": daemon_id})
    follower.expect(type="unsubscription_confirmed")
    publish(event_type, daemon_id, marker="after-unsubscribe")
    assert follower.nothing_within(0.3, daemon_id=daemon_id)


def test_log_lines_keep_their_order(connect, publish):
    client = connect()
    daemon_id = str(uuid.uuid4())
    client.subscribe(daemon_id)
    for batch in range(50):
        publish(EventType.DAEMON_LOG, daemon_id, lines=[{"id": batch}])
    received = [client.expect(daemon_id=daemon_id)["lines"][0]["id"] for _ in range(50)]
    assert received == list(range(50))


def test_one_redis_connection_serves_every_client(connect, relay, redis_url):
    clients = [connect() for _ in range(12)]
    for client in clients:
        assert client.ask({"type": "ping"}) == {"type": "pong"}
    names = [entry["name"] for entry in redis.Redis.from_url(redis_url).client_list()]
    assert names.count(relay.client_name) == 1


def test_a_dead_client_is_removed(connect, relay):
    before = set(relay._connections)
    client = connect()
    (mine,) = set(relay._connections) - before

    client.ws.sock.shutdown(socket.SHUT_RDWR)  # gone without a closing handshake
    client.ws.sock.close()

    eventually(lambda: mine not in relay._connections)


def test_a_slow_client_is_dropped_without_delaying_the_others(connect, publish, relay):
    dropped_before = relay.dropped_total
    before = set(relay._connections)
    # A client that never reads, with tiny socket buffers at both ends: the server's sends to
    # it block at once, so its queue fills after about queue_size messages.
    slow = connect(sockopt=((socket.SOL_SOCKET, socket.SO_RCVBUF, 4096),))
    (slow_conn,) = set(relay._connections) - before
    slow_conn.ws.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    fast = connect()
    count, payload = relay.queue_size + 200, "x" * 16_000
    received: list[float] = []

    def read_all() -> None:
        for _ in range(count):
            fast.expect(timeout=10, marker="flood")
            received.append(time.monotonic())

    reader = threading.Thread(target=read_all)
    reader.start()
    started = time.monotonic()
    # About 3 MB/s: a pace a healthy client keeps up with, even on a busy CI machine.
    for number in range(count):
        publish(EventType.JOB_UPDATE, None, marker="flood", number=number, padding=payload)
        time.sleep(0.005)
    reader.join(30)

    assert len(received) == count, "the fast client missed messages"
    longest_wait = max(b - a for a, b in zip([started, *received], received, strict=False))
    assert longest_wait < 2.0, f"the fast client waited {longest_wait:.2f}s for a message"
    assert relay.dropped_total == dropped_before + 1
    with pytest.raises((websocket.WebSocketException, OSError)):
        for _ in range(count + 1):  # what was buffered, then the end of the connection
            slow.recv(timeout=5)


def test_the_relay_reconnects_to_redis_by_itself(connect, publish, relay, redis_url):
    client = connect()
    daemon_id = str(uuid.uuid4())
    client.subscribe(daemon_id)
    admin = redis.Redis.from_url(redis_url)
    (entry,) = [e for e in admin.client_list() if e["name"] == relay.client_name]

    admin.client_kill_filter(_id=entry["id"])

    assert client.expect(timeout=10, type="resync") == {
        "type": "resync",
        "daemon_id": None,
        "reason": "relay reconnected",
    }
    publish(EventType.DAEMON_LOG, daemon_id, lines=[{"id": 1}])
    assert client.expect(daemon_id=daemon_id)["lines"] == [{"id": 1}]


def test_building_the_app_starts_no_subscriber(app):
    other = create_app({"REDIS_URL": app.config["REDIS_URL"], "TESTING": True})
    relay = other.extensions["relay"]
    assert relay._thread is None
    assert relay.connection_count == 0


def refusal(url: str, **options) -> websocket.WebSocketBadStatusException:
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(url, timeout=5, **options)
    return refused.value


def test_a_socket_without_credentials_is_refused_before_the_upgrade(live_server):
    refused = refusal(live_server.ws_url)
    assert refused.status_code == 401
    assert json.loads(refused.resp_body)["error"]["code"] == "unauthorized"
    assert refusal(live_server.ws_url, header=["Authorization: Bearer shd_nope"]).status_code == 401


def test_a_socket_from_a_foreign_origin_is_refused_even_with_credentials(
    live_server, role_tokens, app
):
    header = [f"Authorization: Bearer {role_tokens[Role.ADMIN]}"]
    for origin in ("https://evil.example", "http://127.0.0.1.evil.example", "null"):
        refused = refusal(live_server.ws_url, header=header, origin=origin)
        assert refused.status_code == 403, origin
        assert json.loads(refused.resp_body)["error"]["code"] == "forbidden_origin"
    # The panel's own origin, and no Origin at all (a script), are let in.
    for options in ({"origin": live_server.url}, {"suppress_origin": True}):
        client = Client(live_server.ws_url, header=header, **options)
        assert client.ask({"type": "ping"}) == {"type": "pong"}
        client.close()


def test_a_signed_in_browser_session_opens_the_socket(app, live_server):
    browser = app.test_client()
    assert login(browser, username_for(Role.VIEWER)).status_code == 302
    cookie = f"session={browser.get_cookie('session').value}"
    client = Client(live_server.ws_url, cookie=cookie, origin=live_server.url)
    assert client.ask({"type": "ping"}) == {"type": "pong"}
    client.close()


def test_each_subscription_is_authorized(app, connect):
    with app.app_context():
        token, text = tokens.create_token("short-lived-socket", username_for(Role.VIEWER))
    client = connect(header=[f"Authorization: Bearer {text}"])
    client.subscribe(str(uuid.uuid4()))
    with app.app_context():
        tokens.revoke_token(token.id)
    reply = client.ask({"command": "subscribe", "daemon_id": str(uuid.uuid4())})
    assert reply["type"] == "error" and "not allowed" in reply["message"]
