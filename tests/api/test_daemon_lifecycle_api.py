"""``/api/daemons`` health, start / stop / restart (one and all) with a real worker, and that
refused actions leave the database as it was."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from stashhog.api.responses import HealthReport
from stashhog.events import get_redis, key
from stashhog.extensions import db
from stashhog.models import Daemon, DaemonStatus, DesiredState
from stashhog.services import lease
from stashhog.services.daemon_state import change_daemon
from tests.api.conftest import UNKNOWN, error_of, next_event, set_row
from tests.support.wait import eventually

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


def test_heartbeat_deadline_and_verdict_are_published_in_the_api_and_the_events(client, daemon):
    beat = datetime.now(UTC)
    set_row(daemon.id, status="RUNNING", desired_state="RUNNING", generation=3,
            configuration={"heartbeat_interval": 30}, last_heartbeat=beat)  # fmt: skip
    lease.acquire_lease(daemon.id, 3, ttl=5)
    pubsub = get_redis().pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(key("events", "all"))
    try:
        body = client.get(f"/api/daemons/{daemon.id}").get_json()
        assert datetime.fromisoformat(body["heartbeat_deadline"]) == beat + timedelta(seconds=60.5)

        change_daemon(daemon.id, if_generation=3, status_line="busy")  # as the runtime writes
        update = next_event(pubsub, "daemon_update")["daemon"]
        assert (update["health"], update["heartbeat_deadline"]) == (
            "healthy", body["heartbeat_deadline"])  # fmt: skip

        change_daemon(daemon.id, if_generation=3, status="STOPPING", desired_state="STOPPED")
        status = next_event(pubsub, "daemon_status")
        assert (status["health"], status["health_reason"], status["heartbeat_deadline"]) == (
            "stopped", "stopping", None)  # fmt: skip
    finally:
        pubsub.close()
        lease.release_lease(daemon.id, 3)


def test_stopped_and_disabled_daemons_are_reported_stopped_with_reason(client, make_daemon):
    stopped = make_daemon()
    disabled = make_daemon(enabled=False)
    report = client.get("/api/daemons/health/check").get_json()
    reasons = {entry["id"]: entry["reason"] for entry in report["stopped"]}
    assert reasons[str(stopped.id)] == "stopped"
    assert reasons[str(disabled.id)] == "disabled"


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
