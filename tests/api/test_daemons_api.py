"""``/api/daemons``: each endpoint's success shape, each error status, and that refused
requests leave the database as it was."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from stashhog.api.schemas import (
    DaemonList,
    DaemonOut,
    DaemonUpdated,
    DefaultConfig,
    HealthReport,
    HistoryList,
    LogList,
)
from stashhog.events import get_redis, key
from stashhog.extensions import db
from stashhog.models import Daemon, DaemonStatus, DesiredState
from stashhog.services import lease
from tests.api.conftest import error_of
from tests.support.wait import eventually

UNKNOWN = str(uuid.uuid4())


def set_row(daemon_id, **values) -> None:
    row = db.session.get(Daemon, daemon_id)
    for name, value in values.items():
        setattr(row, name, value)
    db.session.commit()


# -- GET /api/daemons, GET /api/daemons/{id} -------------------------------------------------


def test_list_shows_every_daemon_with_state_health_and_configuration(client, daemon):
    response = client.get("/api/daemons")
    assert response.status_code == 200
    body = DaemonList.model_validate(response.get_json())
    ours = next(d for d in body.daemons if d.id == daemon.id)
    assert ours.configuration == {"log_interval": 2.0}
    assert (ours.status, ours.desired_state, ours.health) == ("STOPPED", "STOPPED", "stopped")
    assert ours.uptime_seconds is None and ours.last_heartbeat is None
    assert "Test Daemon" in [d.name for d in body.daemons]  # the seed row
    raw = next(d for d in response.get_json()["daemons"] if d["id"] == str(daemon.id))
    assert datetime.fromisoformat(raw["created_at"]).tzinfo is not None


def test_get_one_daemon(client, daemon):
    response = client.get(f"/api/daemons/{daemon.id}")
    assert response.status_code == 200
    assert DaemonOut.model_validate(response.get_json()).name == daemon.name


@pytest.mark.parametrize("ref", [UNKNOWN, "not-a-uuid", "12345", "%00"])
def test_unknown_or_malformed_daemon_id_is_404(client, clean_db, ref):
    error_of(client.get(f"/api/daemons/{ref}"), 404, "not_found")
    error_of(client.get(f"/api/daemons/{ref}/logs"), 404, "not_found")


def test_unknown_query_parameter_is_400_naming_it(client, daemon):
    error = error_of(client.get("/api/daemons?colour=blue"), 400, "invalid_parameter")
    assert error["parameter"] == "colour"


def test_unknown_route_and_wrong_method_are_json(client, daemon):
    error_of(client.get("/api/nothing-here"), 404)
    response = client.delete(f"/api/daemons/{daemon.id}")
    error_of(response, 405)
    assert set(response.headers["Allow"].split(", ")) >= {"GET", "PUT"}


# -- health ------------------------------------------------------------------------------------


def test_running_daemon_with_lease_and_fresh_heartbeat_is_healthy(client, daemon):
    now = datetime.now(UTC)
    set_row(daemon.id, status="RUNNING", desired_state="RUNNING", generation=3,
            started_at=now - timedelta(seconds=30), last_heartbeat=now)  # fmt: skip
    lease.acquire_lease(daemon.id, 3, ttl=5)
    try:
        body = client.get(f"/api/daemons/{daemon.id}").get_json()
        assert body["health"] == "healthy" and body["health_reason"] is None
        assert 29 <= body["uptime_seconds"] <= 40
        report = HealthReport.model_validate(client.get("/api/daemons/health/check").get_json())
        entry = next(e for e in report.healthy if e.id == daemon.id)
        assert entry.uptime_seconds >= 29
    finally:
        lease.release_lease(daemon.id, 3)


@pytest.mark.parametrize(
    ("row", "holder", "reason"),
    [
        ({"status": "RUNNING", "heartbeat_age": 0}, None, "lease has expired"),
        ({"status": "RUNNING", "heartbeat_age": 25}, 3, "no heartbeat for 25s"),
        ({"status": "ERROR", "last_error": "boom"}, None, "ended in error: boom"),
        ({"status": "STOPPED"}, None, "should be running but is STOPPED"),
    ],
)
def test_daemon_that_should_run_but_does_not_is_unhealthy_with_reason(
    client, daemon, row, holder, reason
):
    age = row.pop("heartbeat_age", None)
    beat = datetime.now(UTC) - timedelta(seconds=age) if age is not None else None
    set_row(daemon.id, desired_state="RUNNING", generation=3, last_heartbeat=beat, **row)
    if holder:
        lease.acquire_lease(daemon.id, holder, ttl=5)
    try:
        body = client.get(f"/api/daemons/{daemon.id}").get_json()
        assert body["health"] == "unhealthy" and reason in body["health_reason"]
        report = client.get("/api/daemons/health/check").get_json()
        entry = next(e for e in report["unhealthy"] if e["id"] == str(daemon.id))
        assert reason in entry["reason"]
    finally:
        lease.release_lease(daemon.id, 3)


def test_heartbeat_threshold_is_twice_the_configured_interval(client, daemon):
    set_row(daemon.id, status="RUNNING", desired_state="RUNNING", generation=3,
            configuration={"heartbeat_interval": 30},
            last_heartbeat=datetime.now(UTC) - timedelta(seconds=45))  # fmt: skip
    lease.acquire_lease(daemon.id, 3, ttl=5)
    try:
        assert client.get(f"/api/daemons/{daemon.id}").get_json()["health"] == "healthy"
        set_row(daemon.id, last_heartbeat=datetime.now(UTC) - timedelta(seconds=65))
        assert client.get(f"/api/daemons/{daemon.id}").get_json()["health"] == "unhealthy"
    finally:
        lease.release_lease(daemon.id, 3)


def test_stopped_and_disabled_daemons_are_reported_stopped_with_reason(client, make_daemon):
    stopped = make_daemon()
    disabled = make_daemon(enabled=False)
    report = client.get("/api/daemons/health/check").get_json()
    reasons = {entry["id"]: entry["reason"] for entry in report["stopped"]}
    assert reasons[str(stopped.id)] == "stopped"
    assert reasons[str(disabled.id)] == "disabled"


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
        deadline = time.monotonic() + 3
        events = []
        while time.monotonic() < deadline and not any(e["type"] == "daemon_update" for e in events):
            message = pubsub.get_message(timeout=0.2)
            if message:
                events.append(json.loads(message["data"]))
        update = next(e for e in events if e["type"] == "daemon_update")
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
        ({"name": "  padded  "}, "name"),
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


# -- GET /api/daemons/{id}/default-config --------------------------------------------------------


def test_default_config_lists_every_key_with_default_and_description(client, daemon):
    response = client.get(f"/api/daemons/{daemon.id}/default-config")
    assert response.status_code == 200
    body = DefaultConfig.model_validate(response.get_json())
    assert body.type == "TEST_DAEMON"
    config = body.configuration
    assert set(config) == {
        "heartbeat_interval",
        "log_interval",
        "job_interval",
        "simulate_errors",
        "job_metadata",
    }
    assert config["log_interval"].default == 5 and config["log_interval"].description
    assert config["job_metadata"].default == {}  # a default_factory default


def test_default_config_of_unknown_daemon_is_404(client, clean_db):
    error_of(client.get(f"/api/daemons/{UNKNOWN}/default-config"), 404)


def test_default_config_of_an_uninstalled_type_is_409(client, make_daemon):
    ghost = make_daemon(type="NO_SUCH_TYPE")
    error_of(client.get(f"/api/daemons/{ghost.id}/default-config"), 409, "conflict")


# -- GET /api/daemons/{id}/logs -------------------------------------------------------------------

LINES = [("DEBUG", "d0"), ("INFO", "i1"), ("WARNING", "w2"), ("ERROR", "e3"), ("INFO", "i4")]


def messages(response) -> list[str]:
    assert response.status_code == 200, response.get_json()
    return [line.message for line in LogList.model_validate(response.get_json()).logs]


def test_logs_are_newest_first_by_default(client, daemon, add_logs):
    add_logs(daemon, LINES)
    assert messages(client.get(f"/api/daemons/{daemon.id}/logs")) == ["i4", "e3", "w2", "i1", "d0"]


def test_log_level_means_this_level_and_above(client, daemon, add_logs):
    add_logs(daemon, LINES)
    url = f"/api/daemons/{daemon.id}/logs"
    assert messages(client.get(f"{url}?level=WARNING")) == ["e3", "w2"]
    assert messages(client.get(f"{url}?level=info")) == ["i4", "e3", "w2", "i1"]


def test_logs_page_by_id_without_gaps(client, daemon, add_logs):
    rows = add_logs(daemon, LINES)
    url = f"/api/daemons/{daemon.id}/logs"
    first = messages(client.get(f"{url}?order=asc&limit=2"))
    rest = messages(client.get(f"{url}?order=asc&after_id={rows[1].id}"))
    assert first + rest == ["d0", "i1", "w2", "e3", "i4"]
    assert messages(client.get(f"{url}?before_id={rows[2].id}")) == ["i1", "d0"]


def test_logs_since_filters_by_time(client, daemon, add_logs):
    start = datetime(2030, 1, 1, tzinfo=UTC)
    add_logs(daemon, LINES, start=start)
    since = (start + timedelta(seconds=3)).isoformat().replace("+00:00", "Z")
    assert messages(client.get(f"/api/daemons/{daemon.id}/logs?since={since}")) == ["i4", "e3"]


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=ten", "limit"),
        ("level=LOUD", "level"),
        ("after_id=-1", "after_id"),
        ("after_id=99999999999999999999", "after_id"),
        ("since=yesterday", "since"),
        ("since=2030-01-01T00:00:00", "since"),  # no timezone
        ("order=sideways", "order"),
        ("limit=5&limit=6", "limit"),
    ],
)
def test_invalid_log_query_is_400_naming_the_parameter(client, daemon, query, parameter):
    error = error_of(client.get(f"/api/daemons/{daemon.id}/logs?{query}"), 400)
    assert error["parameter"] == parameter


# -- GET /api/daemons/{id}/history ----------------------------------------------------------------


def test_history_shows_actions_with_job_type_and_status_newest_first(
    client, daemon, add_job, add_history
):
    job = add_job(status="completed", daemon=daemon)
    now = datetime.now(UTC)
    add_history(daemon, job, "LAUNCHED", "periodic test job", at=now - timedelta(seconds=2))
    add_history(daemon, job, "FINISHED", "completed", at=now)
    response = client.get(f"/api/daemons/{daemon.id}/history")
    assert response.status_code == 200
    history = HistoryList.model_validate(response.get_json()).history
    assert [entry.action for entry in history] == ["FINISHED", "LAUNCHED"]
    assert history[0].job_type == "TEST" and history[0].job_status == "completed"
    assert history[0].job_id == job.id


def test_history_filters_by_action_and_since(client, daemon, add_job, add_history):
    job = add_job(daemon=daemon)
    add_history(daemon, job, "LAUNCHED", at=datetime(2020, 1, 1, tzinfo=UTC))
    add_history(daemon, job, "CANCELLED", at=datetime(2030, 1, 1, tzinfo=UTC))
    url = f"/api/daemons/{daemon.id}/history"
    assert [e["action"] for e in client.get(f"{url}?action=LAUNCHED").get_json()["history"]] == [
        "LAUNCHED"
    ]
    recent = client.get(f"{url}?since=2025-01-01T00:00:00%2B00:00").get_json()["history"]
    assert [e["action"] for e in recent] == ["CANCELLED"]


@pytest.mark.parametrize("query", ["action=EXPLODED", "limit=0", "since=soon", "extra=1"])
def test_invalid_history_query_is_400(client, daemon, query):
    error_of(client.get(f"/api/daemons/{daemon.id}/history?{query}"), 400, "invalid_parameter")


def test_history_of_unknown_daemon_is_404(client, clean_db):
    error_of(client.get(f"/api/daemons/{UNKNOWN}/history"), 404)


# -- start / stop / restart with a real worker --------------------------------------------------

FAST = {"log_interval": 0.2, "heartbeat_interval": 0.5, "job_interval": 3600}


def settled(client, daemon_id, generation: int) -> None:
    """Wait until that generation has logged its start, i.e. is past its start-up.

    (A stop in a running instance's first milliseconds can hang it: reported to the runtime;
    these tests are about the API, so they let each instance settle first.)"""
    url = f"/api/daemons/{daemon_id}/logs?order=asc"
    eventually(
        lambda: any(
            line["message"] == f"started on generation {generation}"
            for line in client.get(url).get_json()["logs"]
        ),
        timeout=10,
    )


@pytest.mark.usefixtures("daemons_worker", "stop_everything")
def test_start_stop_restart_act_and_are_idempotent(client, make_daemon):
    daemon = make_daemon(configuration=FAST)
    url = f"/api/daemons/{daemon.id}"

    started = client.post(f"{url}/start?wait=5").get_json()
    assert started["changed"] is True and started["daemon"]["status"] == "RUNNING"
    assert started["daemon"]["health"] == "healthy"
    again = client.post(f"{url}/start").get_json()
    assert again["changed"] is False and "already running" in again["message"]
    settled(client, daemon.id, started["daemon"]["generation"])

    restarted = client.post(f"{url}/restart?wait=5").get_json()
    assert restarted["changed"] is True and restarted["daemon"]["status"] == "RUNNING"
    assert restarted["daemon"]["generation"] > started["daemon"]["generation"]
    settled(client, daemon.id, restarted["daemon"]["generation"])

    stopped = client.post(f"{url}/stop?wait=5").get_json()
    assert stopped["changed"] is True and stopped["daemon"]["status"] == "STOPPED"
    assert stopped["daemon"]["health"] == "stopped"
    again = client.post(f"{url}/stop").get_json()
    assert again["changed"] is False and "already stopped" in again["message"]


@pytest.mark.usefixtures("daemons_worker", "stop_everything")
def test_a_sleeping_daemon_is_not_falsely_unhealthy(client, make_daemon):
    # It logs once an hour, so it spends the test inside self.sleep(); heartbeats go on.
    daemon = make_daemon(configuration={"log_interval": 3600, "heartbeat_interval": 0.3})
    client.post(f"/api/daemons/{daemon.id}/start?wait=5")
    deadline = datetime.now(UTC) + timedelta(seconds=2)
    while datetime.now(UTC) < deadline:
        body = client.get(f"/api/daemons/{daemon.id}").get_json()
        assert body["health"] == "healthy", body["health_reason"]


def test_starting_a_disabled_daemon_is_409_and_writes_nothing(client, make_daemon, unchanged):
    daemon = make_daemon(enabled=False)
    with unchanged():
        error = error_of(client.post(f"/api/daemons/{daemon.id}/start"), 409, "conflict")
        error_of(client.post(f"/api/daemons/{daemon.id}/restart"), 409, "conflict")
    assert "disabled" in error["message"]


def test_starting_with_invalid_stored_configuration_is_422_and_writes_nothing(
    client, make_daemon, unchanged
):
    daemon = make_daemon(configuration={"log_interval": "often"})
    with unchanged():
        error = error_of(client.post(f"/api/daemons/{daemon.id}/start"), 422)
    assert error["key"] == "log_interval"


@pytest.mark.parametrize("action", ["start", "stop", "restart"])
def test_actions_on_unknown_daemons_are_404_and_write_nothing(client, clean_db, unchanged, action):
    with unchanged():
        error_of(client.post(f"/api/daemons/{UNKNOWN}/{action}"), 404)
        error_of(client.post(f"/api/daemons/nope/{action}"), 404)


def test_invalid_wait_is_400_and_writes_nothing(client, daemon, unchanged):
    with unchanged():
        error_of(client.post(f"/api/daemons/{daemon.id}/start?wait=forever"), 400)
        error_of(client.post(f"/api/daemons/{daemon.id}/start?wait=31"), 400)


def test_stopping_a_stopped_daemon_writes_nothing(client, daemon, unchanged):
    with unchanged():
        assert client.post(f"/api/daemons/{daemon.id}/stop").get_json()["changed"] is False


# -- bulk actions -----------------------------------------------------------------------------


@pytest.mark.usefixtures("daemons_worker", "stop_everything")
def test_start_all_stop_all_restart_all_report_counts_and_errors(
    client, make_daemon, seed_disabled
):
    good = make_daemon(configuration=FAST)
    broken = make_daemon(configuration={"log_interval": "often"})
    make_daemon(enabled=False)

    started = client.post("/api/daemons/start-all").get_json()
    assert (started["requested"], started["changed"], started["skipped"]) == (2, 1, 2)
    assert started["errors"] == [
        {"daemon_id": str(broken.id), "name": broken.name, "error": started["errors"][0]["error"]}
    ]
    assert "log_interval" in started["errors"][0]["error"]
    running = client.post(f"/api/daemons/{good.id}/start?wait=5").get_json()
    assert running["changed"] is False
    settled(client, good.id, running["daemon"]["generation"])

    restarted = client.post("/api/daemons/restart-all").get_json()
    assert (restarted["requested"], restarted["changed"], restarted["errors"]) == (1, 1, [])
    generation = client.get(f"/api/daemons/{good.id}").get_json()["generation"]
    assert generation == running["daemon"]["generation"] + 1
    settled(client, good.id, generation)

    stopped = client.post("/api/daemons/stop-all").get_json()
    assert stopped["changed"] == 1 and stopped["errors"] == []
    again = client.post("/api/daemons/stop-all").get_json()
    assert again["changed"] == 0 and again["requested"] == stopped["requested"]
    db.session.expire_all()
    assert db.session.get(Daemon, good.id).desired_state == DesiredState.STOPPED
    assert db.session.get(Daemon, broken.id).status == DaemonStatus.STOPPED


def test_bulk_actions_refuse_query_parameters_and_write_nothing(client, daemon, unchanged):
    with unchanged():
        for action in ("start-all", "stop-all", "restart-all"):
            error_of(client.post(f"/api/daemons/{action}?force=1"), 400)


# -- dependencies down ---------------------------------------------------------------------------


def test_redis_down_is_503_and_writes_nothing(app_without_redis, daemon, unchanged):
    client = app_without_redis.test_client()
    with unchanged():
        error_of(client.get("/api/daemons"), 503, "unavailable")
        error_of(client.get(f"/api/daemons/{daemon.id}"), 503, "unavailable")
        error_of(client.get("/api/daemons/health/check"), 503, "unavailable")
        error_of(client.put(f"/api/daemons/{daemon.id}", json={"enabled": False}), 503)
        error_of(client.post(f"/api/daemons/{daemon.id}/stop"), 503)


def test_database_down_is_503(app_without_database):
    client = app_without_database.test_client()
    error = error_of(client.get("/api/daemons"), 503, "unavailable")
    assert "OperationalError" in error["message"]
    error_of(client.get(f"/api/daemons/{UNKNOWN}/logs"), 503, "unavailable")
