"""Daemons from types: the type catalogue, create, edit every setting (with If-Match), delete."""

from __future__ import annotations

import uuid

import pytest

from stashhog.events import get_redis, key
from stashhog.extensions import db
from stashhog.models import Daemon, DaemonJobHistory, DaemonLog, Job
from tests.api.conftest import error_of, next_event, set_row


@pytest.fixture
def pubsub_all(app_ctx):
    """Listening on the broadcast channel (daemon_created, daemon_deleted, daemon_update)."""
    pubsub = get_redis().pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(key("events", "all"))
    yield pubsub
    pubsub.close()


def create(client, **body):
    body.setdefault("type", "TEST_DAEMON")
    return client.post("/api/daemons", json=body)


# -- the catalogue ---------------------------------------------------------------------------


def test_types_list_every_registered_type_with_its_full_schema(client):
    body = client.get("/api/daemon-types").get_json()
    by_type = {entry["type"]: entry for entry in body["types"]}
    assert {"TEST_DAEMON", "METADATA_GENERATE_WATCHER"} <= set(by_type)
    test = by_type["TEST_DAEMON"]
    assert test["description"]
    interval = test["config_schema"]["properties"]["log_interval"]
    assert interval["type"] == "number" and interval["minimum"] > 0 and interval["description"]
    assert test["default_configuration"]["log_interval"] == interval["default"]
    assert test["default_settings"] == {
        "enabled": True,
        "auto_start": False,
        "restart_policy": "on-failure",
        "max_restarts": 5,
        "restart_window": 600,
        "log_max_lines": None,
        "log_max_age_days": None,
        "max_memory_mb": None,
        "max_cpu_percent": None,
        "limit_action": "restart",
        "depends_on": [],
    }
    policy = body["settings_schema"]["$defs"]["RestartPolicy"]
    assert policy["enum"] == ["always", "on-failure", "never"]


def test_default_config_carries_the_full_schema(client, daemon):
    body = client.get(f"/api/daemons/{daemon.id}/default-config").get_json()
    assert body["configuration"]["log_interval"]["default"] == 5
    assert body["schema"]["properties"]["log_interval"]["minimum"] > 0
    assert body["default_configuration"]["log_interval"] == 5


# -- create ----------------------------------------------------------------------------------


def test_create_answers_201_with_the_daemon_and_its_location(client, clean_db):
    response = create(client, name="  Night watch  ", configuration={"log_interval": 3})
    assert response.status_code == 201, response.get_data(as_text=True)
    daemon = response.get_json()
    assert daemon["name"] == "Night watch"  # trimmed
    assert daemon["status"] == "STOPPED" and daemon["desired_state"] == "STOPPED"
    assert daemon["configuration"] == {"log_interval": 3}
    assert response.headers["Location"].endswith(f"/api/daemons/{daemon['id']}")
    assert client.get(response.headers["Location"]).get_json()["name"] == "Night watch"


def test_create_takes_every_setting(client, clean_db):
    daemon = create(
        client,
        name="tuned",
        enabled=False,
        auto_start=True,
        restart_policy="always",
        max_restarts=9,
        restart_window=60,
    ).get_json()
    row = db.session.get(Daemon, uuid.UUID(daemon["id"]))
    assert (row.enabled, row.auto_start, row.restart_policy) == (False, True, "always")
    assert (row.max_restarts, row.restart_window) == (9, 60)


def test_create_publishes_daemon_created(client, clean_db, app, pubsub_all):
    daemon = create(client, name="announced").get_json()
    event = next_event(pubsub_all, "daemon_created")
    assert event["daemon_id"] == daemon["id"]
    assert event["daemon"]["name"] == "announced"


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ({"name": "x", "type": "NO_SUCH_TYPE"}, "type"),
        ({"name": "x", "configuration": {"log_interval": -1}}, "log_interval"),
        ({"name": "x", "configuration": {"bogus": 1}}, "bogus"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 256}, "name"),
        ({"name": str(uuid.uuid4())}, "name"),
        ({"name": "x", "restart_policy": "sometimes"}, "restart_policy"),
        ({"name": "x", "max_restarts": -1}, "max_restarts"),
        ({"name": "x", "restart_window": 1}, "restart_window"),
        ({"name": "x", "colour": "red"}, "colour"),
    ],
)
def test_a_bad_create_is_422_naming_the_key_and_writes_nothing(
    client, clean_db, unchanged, body, key
):
    with unchanged():
        response = client.post("/api/daemons", json={"type": "TEST_DAEMON", **body})
    assert error_of(response, 422)["key"] == key


def test_a_duplicate_name_is_409(client, clean_db, unchanged):
    assert create(client, name="twin").status_code == 201
    with unchanged():
        assert error_of(create(client, name="twin"), 409)["message"]


def test_create_with_start_starts_it(client, clean_db, daemons_worker, stop_everything):
    response = client.post(
        "/api/daemons?wait=10",
        json={"name": "eager", "type": "TEST_DAEMON", "start": True,
              "configuration": {"heartbeat_interval": 1}},
    )  # fmt: skip
    assert response.status_code == 201
    assert response.get_json()["status"] == "RUNNING"


# -- edit every setting -------------------------------------------------------------------------


def test_put_edits_every_setting(client, daemon):
    body = {
        "restart_policy": "never",
        "max_restarts": 2,
        "restart_window": 120,
        "enabled": False,
        "auto_start": True,
        "name": "renamed",
    }
    response = client.put(f"/api/daemons/{daemon.id}", json=body)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert set(response.get_json()["updated"]) == set(body)
    shown = response.get_json()["daemon"]
    for name, value in body.items():
        assert shown[name] == value


def test_put_with_a_stale_if_match_is_412_and_changes_nothing(client, daemon, unchanged):
    etag = client.get(f"/api/daemons/{daemon.id}").headers["ETag"]
    assert client.put(f"/api/daemons/{daemon.id}", json={"max_restarts": 3},
                      headers={"If-Match": etag}).status_code == 200  # fmt: skip
    with unchanged():
        response = client.put(
            f"/api/daemons/{daemon.id}", json={"max_restarts": 4}, headers={"If-Match": etag}
        )
    error = error_of(response, 412, "precondition_failed")
    assert "changed" in error["message"]


def test_put_with_the_current_etag_succeeds_and_returns_a_new_one(client, daemon):
    etag = client.get(f"/api/daemons/{daemon.id}").headers["ETag"]
    response = client.put(
        f"/api/daemons/{daemon.id}", json={"restart_policy": "always"}, headers={"If-Match": etag}
    )
    assert response.status_code == 200
    assert response.headers["ETag"] != etag
    assert client.get(f"/api/daemons/{daemon.id}").headers["ETag"] == response.headers["ETag"]


def test_a_rename_is_trimmed(client, daemon):
    response = client.put(f"/api/daemons/{daemon.id}", json={"name": "  padded  "})
    assert response.get_json()["daemon"]["name"] == "padded"


def test_a_rename_to_a_uuid_is_refused(client, daemon, unchanged):
    with unchanged():
        response = client.put(f"/api/daemons/{daemon.id}", json={"name": str(uuid.uuid4())})
    assert error_of(response, 422)["key"] == "name"


# -- delete ----------------------------------------------------------------------------------


def test_delete_takes_logs_and_history_and_keeps_jobs_unlinked(
    client, daemon, add_logs, add_job, add_history, pubsub_all
):
    daemon_id = daemon.id
    add_logs(daemon, [("INFO", "one"), ("INFO", "two")])
    job = add_job(daemon=daemon)
    job_id = job.id
    add_history(daemon, job, "LAUNCHED")
    response = client.delete(f"/api/daemons/{daemon_id}")
    assert response.status_code == 204 and response.get_data() == b""
    db.session.expire_all()
    assert db.session.get(Daemon, daemon_id) is None
    logs = db.select(DaemonLog).where(DaemonLog.daemon_id == daemon_id)
    assert not db.session.scalars(logs).all()
    history = db.select(DaemonJobHistory).where(DaemonJobHistory.daemon_id == daemon_id)
    assert not db.session.scalars(history).all()
    kept = db.session.get(Job, job_id)
    assert kept is not None and kept.daemon_id is None
    assert next_event(pubsub_all, "daemon_deleted")["daemon_id"] == str(daemon_id)
    error_of(client.get(f"/api/daemons/{daemon_id}"), 404)


@pytest.mark.parametrize("status", ["RUNNING", "STARTING", "STOPPING"])
def test_delete_of_a_daemon_that_is_not_stopped_is_409(client, daemon, unchanged, status):
    set_row(daemon.id, status=status)
    with unchanged():
        error = error_of(client.delete(f"/api/daemons/{daemon.id}"), 409)
    assert "stop it first" in error["message"].lower()


def test_delete_of_an_unknown_daemon_is_404(client, clean_db):
    error_of(client.delete(f"/api/daemons/{uuid.uuid4()}"), 404)


def test_delete_offers_no_purge_switch(client, daemon, unchanged):
    with unchanged():
        error_of(client.delete(f"/api/daemons/{daemon.id}?purge=false"), 400)


# -- the audit trail ----------------------------------------------------------------------------


def test_create_and_delete_are_audited_with_who_acted(client, clean_db):
    daemon = create(client, name="audited").get_json()
    refused = create(client, name="audited")
    assert refused.status_code == 409
    assert client.delete(f"/api/daemons/{daemon['id']}").status_code == 204
    events = client.get("/api/audit?action=daemon.").get_json()["events"]
    mine = [e for e in events if e["action"] in ("daemon.create", "daemon.delete")]
    outcomes = [(e["action"], e["outcome"], e["target_name"]) for e in reversed(mine)][-3:]
    assert outcomes == [
        ("daemon.create", "ok", "audited"),
        ("daemon.create", "failed", "audited"),
        ("daemon.delete", "ok", "audited"),
    ]
    assert {e["actor"] for e in mine[:3]} == {"test-admin"}
