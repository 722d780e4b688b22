"""``PUT /api/daemons/{id}``: partial updates, the restart hint, the published event, and
that refused updates leave the database as it was."""

from __future__ import annotations

import pytest

from stashhog.api.responses import DaemonUpdated
from stashhog.events import get_redis, key
from stashhog.extensions import db
from stashhog.models import Daemon
from tests.api.conftest import UNKNOWN, error_of, next_event, set_row

# -- PUT /api/daemons/{id} ------------------------------------------------------------------------


def put(client, daemon, body, **kwargs):
    return client.put(f"/api/daemons/{daemon.id}", json=body, **kwargs)


def test_partial_configuration_update_merges_and_validates(client, daemon):
    response = put(client, daemon, {"configuration": {"simulate_errors": True}})
    assert response.status_code == 200
    body = DaemonUpdated.model_validate(response.get_json())
    assert body.daemon.configuration == {"log_interval": 2.0, "simulate_errors": True}
    assert body.updated == ["configuration"] and body.restart_required is False
    db.session.expire_all()
    assert db.session.get(Daemon, daemon.id).configuration == body.daemon.configuration


def test_null_resets_a_configuration_key_to_its_default(client, daemon):
    body = put(client, daemon, {"configuration": {"log_interval": None}}).get_json()
    assert body["daemon"]["configuration"] == {}


def test_update_of_enabled_auto_start_and_name(client, daemon):
    body = put(client, daemon, {"enabled": False, "auto_start": True, "name": "renamed"})
    body = body.get_json()
    assert body["updated"] == ["auto_start", "enabled", "name"]
    daemon_out = body["daemon"]
    assert (daemon_out["enabled"], daemon_out["auto_start"], daemon_out["name"]) == (
        False,
        True,
        "renamed",
    )


def test_an_empty_update_changes_nothing(client, daemon, unchanged):
    with unchanged():
        body = put(client, daemon, {}).get_json()
    assert body["updated"] == [] and body["restart_required"] is False


def test_configuration_change_of_a_running_daemon_requires_a_restart(client, daemon):
    set_row(daemon.id, status="RUNNING", desired_state="RUNNING")
    body = put(client, daemon, {"configuration": {"log_interval": 9}}).get_json()
    assert body["restart_required"] is True
    # Writing a default explicitly changes what is stored but not what the daemon runs with.
    body = put(client, daemon, {"configuration": {"job_interval": 30}}).get_json()
    assert body["updated"] == ["configuration"] and body["restart_required"] is False


def test_update_publishes_a_daemon_update_event(client, daemon):
    pubsub = get_redis().pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(key("events", "all"))
    try:
        put(client, daemon, {"auto_start": True})
        update = next_event(pubsub, "daemon_update")
        assert update["daemon_id"] == str(daemon.id) and update["daemon"]["auto_start"] is True
    finally:
        pubsub.close()


@pytest.mark.parametrize(
    ("configuration", "key_name"),
    [
        ({"log_interval": -1}, "log_interval"),
        ({"log_interval": "5"}, "log_interval"),
        ({"heartbeat_interval": 99999}, "heartbeat_interval"),
        ({"no_such_key": 1}, "no_such_key"),
        ({"simulate_errors": "yes"}, "simulate_errors"),
    ],
)
def test_invalid_configuration_is_422_naming_the_key_and_writes_nothing(
    client, daemon, unchanged, configuration, key_name
):
    with unchanged():
        error = error_of(
            put(client, daemon, {"configuration": configuration, "enabled": False}),
            422,
            "invalid_configuration",
        )
    assert error["key"] == key_name


@pytest.mark.parametrize(
    ("body", "key_name"),
    [
        ({"enabled": "yes"}, "enabled"),
        ({"auto_start": 1}, "auto_start"),
        ({"name": ""}, "name"),
        ({"name": "two\nlines"}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 256}, "name"),
        ({"configuration": [1, 2]}, "configuration"),
        ({"status": "RUNNING"}, "status"),
    ],
)
def test_invalid_field_is_422_naming_it_and_writes_nothing(
    client, daemon, unchanged, body, key_name
):
    with unchanged():
        error = error_of(put(client, daemon, body), 422)
    assert error["key"] == key_name


def test_taken_name_is_409_and_writes_nothing(client, daemon, make_daemon, unchanged):
    other = make_daemon()
    with unchanged():
        error_of(put(client, daemon, {"name": other.name, "enabled": False}), 409, "conflict")


@pytest.mark.parametrize(
    ("data", "content_type", "status"),
    [
        ("{not json", "application/json", 400),
        ("[1, 2]", "application/json", 400),
        ('"text"', "application/json", 400),
        ('{"configuration": {"log_interval": NaN}}', "application/json", 400),
        ('{"configuration": {"log_interval": 1e999}}', "application/json", 400),
        ('{"name": "a\\u0000b"}', "application/json", 400),
        ('{"name": "\\ud800"}', "application/json", 400),
        ("", "application/json", 400),
        ('{"enabled": false}', "text/plain", 415),
    ],
)
def test_malformed_body_is_refused_and_writes_nothing(
    client, daemon, unchanged, data, content_type, status
):
    with unchanged():
        error_of(
            client.put(f"/api/daemons/{daemon.id}", data=data, content_type=content_type), status
        )


def test_oversized_body_is_413_and_writes_nothing(client, app, daemon, unchanged):
    padding = "x" * (app.config["MAX_CONTENT_LENGTH"] + 1)
    with unchanged():
        error_of(put(client, daemon, {"name": padding}), 413)
        error_of(client.post(f"/api/daemons/{daemon.id}/stop", data=padding), 413)


def test_update_of_unknown_daemon_is_404(client, clean_db, unchanged):
    with unchanged():
        error_of(client.put(f"/api/daemons/{UNKNOWN}", json={"enabled": False}), 404)
