"""Every operator action is in the audit trail, written by the service that acts: who, when,
from where, on what, the outcome, and for a change the values before and after; the
daemon's own log names who acted. ``GET /api/audit`` filters and pages."""

from __future__ import annotations

import getpass
import uuid

import pytest

from stashhog.auth.roles import Role
from stashhog.extensions import db
from stashhog.models import Job, JobStatus, JobType


def last_event(client, **filters) -> dict:
    query = "&".join(f"{key}={value}" for key, value in {**filters, "limit": 1}.items())
    events = client.get(f"/api/audit?{query}").get_json()["events"]
    assert events, filters
    return events[0]


def daemon_log(client, daemon_id) -> list[str]:
    return [
        line["message"] for line in client.get(f"/api/daemons/{daemon_id}/logs").get_json()["logs"]
    ]


@pytest.fixture
def operator(client_as):
    return client_as(Role.OPERATOR)


def test_start_and_stop_are_recorded_with_who_where_and_outcome(operator, client, make_daemon):
    daemon = make_daemon()
    headers = {"User-Agent": "ops-script/1.0"}
    assert operator.post(f"/api/daemons/{daemon.id}/start", headers=headers).status_code == 200
    assert operator.post(f"/api/daemons/{daemon.id}/stop", headers=headers).status_code == 200
    stop = last_event(client, action="daemon.stop", target=daemon.id)
    start = last_event(client, action="daemon.start", target=daemon.id)
    for event in (start, stop):
        assert event["actor"] == "test-operator" and event["actor_via"] == "token:tests"
        assert event["actor_role"] == "operator" and event["outcome"] == "ok"
        assert event["address"] == "127.0.0.1" and event["user_agent"] == "ops-script/1.0"
        assert event["target_name"] == daemon.name
    assert start["message"] == "daemon started"
    lines = daemon_log(client, daemon.id)
    for action in ("Start", "Stop"):
        said = f"{action} by test-operator (token tests) from 127.0.0.1: "
        assert any(line.startswith(said) for line in lines), (said, lines)


def test_a_refused_start_is_recorded_as_failed(operator, client, make_daemon):
    daemon = make_daemon(enabled=False)
    assert operator.post(f"/api/daemons/{daemon.id}/start").status_code == 409
    event = last_event(client, action="daemon.start", target=str(daemon.id))
    assert event["outcome"] == "failed" and "disabled" in event["message"]


def test_a_configuration_change_is_recorded_with_before_and_after(operator, client, make_daemon):
    daemon = make_daemon(configuration={"log_interval": 5})
    change = {"configuration": {"log_interval": 2}, "auto_start": True}
    reply = operator.put(f"/api/daemons/{daemon.id}", json=change)
    assert reply.status_code == 200, reply.get_json()
    event = last_event(client, action="daemon.update", target=daemon.id)
    assert event["details"]["before"] == {"auto_start": False, "configuration": {"log_interval": 5}}
    assert event["details"]["after"] == {"auto_start": True, "configuration": {"log_interval": 2}}
    assert any(
        line.startswith("Settings changed by test-operator")
        for line in daemon_log(client, daemon.id)
    )


def test_bulk_actions_and_job_cancel_are_recorded(operator, client, app):
    assert operator.post("/api/daemons/stop-all").status_code == 200
    event = last_event(client, action="daemon.stop_all")
    assert event["outcome"] == "ok" and " changed" in event["message"]
    with app.app_context():
        job = Job(type=JobType.TEST, status=JobStatus.PENDING, job_metadata={})
        db.session.add(job)
        db.session.commit()
        job_id = str(job.id)
    assert (
        operator.post(f"/api/jobs/{job_id}/cancel", json={"reason": "not needed"}).status_code
        == 200
    )
    event = last_event(client, action="job.cancel", target=job_id)
    assert event["outcome"] == "ok" and event["target_type"] == "job"


def test_the_cli_acts_as_the_os_user(app, client, make_daemon):
    daemon = make_daemon()
    result = app.test_cli_runner().invoke(args=["daemons", "stop", str(daemon.id)])
    assert result.exit_code == 0, result.output
    event = last_event(client, action="daemon.stop", target=daemon.id)
    assert event["actor"] == f"cli:{getpass.getuser()}" and event["actor_via"] == "cli"


def test_the_audit_api_filters_and_pages(operator, client, make_daemon):
    daemon = make_daemon()
    for _ in range(5):
        operator.post(f"/api/daemons/{daemon.id}/stop")
    first = client.get(f"/api/audit?target={daemon.id}&limit=2").get_json()
    assert len(first["events"]) == 2 and first["next_before_id"] == first["events"][-1]["id"]
    second = client.get(
        f"/api/audit?target={daemon.id}&limit=2&before_id={first['next_before_id']}"
    )
    ids = [e["id"] for e in first["events"] + second.get_json()["events"]]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 4
    everything = client.get(f"/api/audit?target={daemon.id}&limit=100").get_json()
    assert len(everything["events"]) == 5 and everything["next_before_id"] is None
    assert client.get(f"/api/audit?target={daemon.id}&outcome=failed").get_json()["events"] == []
    assert client.get(f"/api/audit?actor=nobody-{uuid.uuid4().hex[:4]}").get_json()["events"] == []
    assert client.get("/api/audit?outcome=maybe").status_code == 400


def test_a_viewer_reads_the_trail_but_only_an_admin_manages_users(client_as):
    assert client_as(Role.VIEWER).get("/api/audit").status_code == 200
    assert client_as(Role.OPERATOR).get("/api/users").status_code == 403
    admin = client_as(Role.ADMIN)
    name = f"api-user-{uuid.uuid4().hex[:6]}"
    made = admin.post("/api/users", json={"username": name, "password": "a long password"})
    assert made.status_code == 201 and made.get_json()["role"] == "viewer"
    user_id = made.get_json()["id"]
    changed = admin.patch(f"/api/users/{user_id}", json={"role": "operator"})
    assert changed.get_json()["role"] == "operator"
    token = admin.post("/api/tokens", json={"name": "ci", "user": name}).get_json()
    assert token["token"].startswith("shd_") and token["user"] == name
    listed = admin.get("/api/tokens").get_json()["tokens"]
    assert token["token"] not in str(listed)
    assert admin.delete(f"/api/tokens/{token['id']}").status_code == 204
    assert admin.delete(f"/api/users/{user_id}").status_code == 204
    trail = admin.get("/api/audit?actor=test-admin&limit=5").get_json()["events"]
    actions = [event["action"] for event in trail]
    assert actions[:4] == ["user.delete", "token.revoke", "token.create", "user.set_role"]
