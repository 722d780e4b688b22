"""Configuration keys a daemon type marks secret are write-only: stored and given to the
daemon, but masked in the API, events, the CLI's JSON, the audit trail and the daemon's own
log lines and status; a PUT that sends the mask back keeps the stored value."""

from __future__ import annotations

import json

import redis

from stashhog import events
from stashhog.daemons.config import SECRET_MASK
from stashhog.extensions import db
from stashhog.models import Daemon
from stashhog.services import daemon_control
from tests.support.wait import eventually

SECRET = "hunter2-webhook-token-0123456789"


def stored(app, daemon_id) -> dict:
    with app.app_context():
        return db.session.get(Daemon, daemon_id).configuration


def test_a_secret_is_stored_but_shown_masked(app, client, make_daemon, redis_url):
    daemon = make_daemon()
    listener = redis.Redis.from_url(redis_url).pubsub()
    with app.app_context():
        listener.psubscribe(events.event_pattern())
    reply = client.put(
        f"/api/daemons/{daemon.id}", json={"configuration": {"webhook_token": SECRET}}
    )
    assert reply.status_code == 200, reply.get_json()
    assert reply.get_json()["daemon"]["configuration"]["webhook_token"] == SECRET_MASK
    assert stored(app, daemon.id)["webhook_token"] == SECRET
    shown = [client.get(f"/api/daemons/{daemon.id}").get_data(as_text=True),
             client.get("/api/daemons").get_data(as_text=True),
             client.get(f"/api/audit?target={daemon.id}").get_data(as_text=True),
             client.get(f"/daemons/{daemon.id}").get_data(as_text=True)]  # fmt: skip
    cli = app.test_cli_runner().invoke(args=["daemons", "list", "--json"])
    published = []
    while (message := listener.get_message(timeout=0.2)) is not None:
        published.append(str(message["data"]))
    listener.close()
    assert any("daemon_update" in text or "daemon_status" in text for text in published)
    for text in [*shown, cli.output, *published]:
        assert SECRET not in text
    audit = client.get(f"/api/audit?target={daemon.id}&action=daemon.update").get_json()
    assert audit["events"][0]["details"]["after"]["configuration"] == {"webhook_token": SECRET_MASK}


def test_sending_the_mask_back_keeps_the_stored_secret(app, client, make_daemon):
    daemon = make_daemon(configuration={"webhook_token": SECRET, "log_interval": 5})
    shown = client.get(f"/api/daemons/{daemon.id}").get_json()["configuration"]
    assert shown == {"webhook_token": SECRET_MASK, "log_interval": 5}
    shown["log_interval"] = 3
    assert client.put(f"/api/daemons/{daemon.id}", json={"configuration": shown}).status_code == 200
    assert stored(app, daemon.id) == {"webhook_token": SECRET, "log_interval": 3}
    client.put(f"/api/daemons/{daemon.id}", json={"configuration": {"webhook_token": None}})
    assert "webhook_token" not in stored(app, daemon.id)


def test_the_type_says_which_keys_are_secret(client, make_daemon):
    daemon = make_daemon()
    keys = client.get(f"/api/daemons/{daemon.id}/default-config").get_json()["configuration"]
    assert keys["webhook_token"]["secret"] is True and keys["webhook_token"]["default"] == ""
    assert "secret" not in keys["log_interval"]


def test_a_daemon_that_logs_its_secret_has_it_masked(app, client, make_daemon, daemons_worker):
    daemon = make_daemon(type="TEST_CARELESS", configuration={"api_key": SECRET})
    with app.app_context():
        daemon_control.start_daemon(daemon.id, wait=10)
    try:

        def logged() -> list[str]:
            lines = client.get(f"/api/daemons/{daemon.id}/logs").get_json()["logs"]
            return [line["message"] for line in lines if "webhook" in line["message"]]

        eventually(lambda: logged(), timeout=10)
        assert logged() == [f"calling the webhook with key {SECRET_MASK}"]
        eventually(lambda: client.get(f"/api/daemons/{daemon.id}").get_json()["status_line"])
        assert client.get(f"/api/daemons/{daemon.id}").get_json()["status_line"] == (
            f"using {SECRET_MASK}"
        )
    finally:
        with app.app_context():
            daemon_control.stop_daemon(daemon.id, wait=10)
    assert json.dumps(client.get(f"/api/daemons/{daemon.id}/logs").get_json()).count(SECRET) == 0
