"""``/api/daemons`` reads: the list, one daemon, its default configuration, logs and history;
each error status, and the 503s when PostgreSQL or Redis is down."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from stashhog.api.responses import DaemonList, DaemonOut, DefaultConfig, HistoryList, LogList
from stashhog.auth.roles import Role
from tests.api.conftest import UNKNOWN, error_of
from tests.support.access import with_token

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
    response = client.patch(f"/api/daemons/{daemon.id}")
    error_of(response, 405)
    assert set(response.headers["Allow"].split(", ")) >= {"GET", "PUT", "DELETE"}


# -- GET /api/daemons/{id}/default-config --------------------------------------------------------


def test_default_config_lists_every_key_with_default_and_description(client, daemon):
    response = client.get(f"/api/daemons/{daemon.id}/default-config")
    assert response.status_code == 200
    body = DefaultConfig.model_validate(response.get_json())
    assert body.type == "TEST_DAEMON"
    config = body.configuration
    assert set(config) == {
        "heartbeat_interval",
        "max_active_jobs",
        "log_interval",
        "job_interval",
        "lines_per_iteration",
        "simulate_errors",
        "webhook_token",
        "crash_after",
        "job_metadata",
        "allocate_mb_per_iteration",
        "busy_fraction",
    }
    assert config["allocate_mb_per_iteration"].default == 0 and config["busy_fraction"].default == 0
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


# -- dependencies down ---------------------------------------------------------------------------


def test_redis_down_is_503_and_writes_nothing(app_without_redis, daemon, unchanged, role_tokens):
    client = with_token(app_without_redis.test_client(), role_tokens[Role.ADMIN])
    with unchanged():
        error_of(client.get("/api/daemons"), 503, "unavailable")
        error_of(client.get(f"/api/daemons/{daemon.id}"), 503, "unavailable")
        error_of(client.get("/api/daemons/health/check"), 503, "unavailable")
        error_of(client.put(f"/api/daemons/{daemon.id}", json={"enabled": False}), 503)
        error_of(client.post(f"/api/daemons/{daemon.id}/stop"), 503)


def test_database_down_is_503(app_without_database, role_tokens):
    client = with_token(app_without_database.test_client(), role_tokens[Role.ADMIN])
    error = error_of(client.get("/api/daemons"), 503, "unavailable")
    assert "OperationalError" in error["message"]
    error_of(client.get(f"/api/daemons/{UNKNOWN}/logs"), 503, "unavailable")
