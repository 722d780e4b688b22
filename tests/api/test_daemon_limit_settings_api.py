"""The resource-limit settings (``max_memory_mb``, ``max_cpu_percent``, ``limit_action``):
set on create and by PUT (null clears a limit), shown with the daemon and in its ETag, bounded
(422 naming the key, nothing stored), and in the settings schema the panel's form is made
from."""

from __future__ import annotations

import pytest

from stashhog.services.daemon_limits import MAX_CPU_PERCENT
from tests.api.conftest import error_of


def put(client, daemon, **body):
    return client.put(f"/api/daemons/{daemon.id}", json=body)


@pytest.mark.parametrize(
    ("body", "key_name"),
    [
        ({"max_memory_mb": 15}, "max_memory_mb"),
        ({"max_memory_mb": 0}, "max_memory_mb"),
        ({"max_memory_mb": "100"}, "max_memory_mb"),
        ({"max_memory_mb": 100.5}, "max_memory_mb"),
        ({"max_memory_mb": True}, "max_memory_mb"),
        ({"max_cpu_percent": 0}, "max_cpu_percent"),
        ({"max_cpu_percent": -5}, "max_cpu_percent"),
        ({"max_cpu_percent": MAX_CPU_PERCENT + 1}, "max_cpu_percent"),
        ({"max_cpu_percent": "30"}, "max_cpu_percent"),
        ({"limit_action": "kill"}, "limit_action"),
        ({"limit_action": 1}, "limit_action"),
    ],
)
def test_bad_limits_are_refused_naming_the_key(client, daemon, unchanged, body, key_name):
    with unchanged():
        error = error_of(put(client, daemon, **body), 422)
    assert error["key"] == key_name and key_name in error["message"]
    with unchanged():
        error = error_of(client.post("/api/daemons", json={
            "name": "limited", "type": "TEST_DAEMON", **body}), 422)  # fmt: skip
    assert error["key"] == key_name


def test_limits_are_stored_shown_in_the_etag_and_cleared_by_null(client, daemon):
    before = client.get(f"/api/daemons/{daemon.id}").json
    assert (before["max_memory_mb"], before["max_cpu_percent"]) == (None, None)
    assert before["limit_action"] == "restart"
    response = put(client, daemon, max_memory_mb=256, max_cpu_percent=50, limit_action="stop")
    assert response.status_code == 200, response.json
    assert sorted(response.json["updated"]) == ["limit_action", "max_cpu_percent", "max_memory_mb"]
    shown = client.get(f"/api/daemons/{daemon.id}").json
    assert (shown["max_memory_mb"], shown["max_cpu_percent"], shown["limit_action"]) == (
        256, 50.0, "stop")  # fmt: skip
    assert shown["etag"] != before["etag"]
    # A stale ETag is refused for a limit too.
    stale = client.put(f"/api/daemons/{daemon.id}", json={"max_memory_mb": 300},
                       headers={"If-Match": before["etag"]})  # fmt: skip
    assert stale.status_code == 412

    cleared = put(client, daemon, max_memory_mb=None)
    assert cleared.json["updated"] == ["max_memory_mb"]
    assert cleared.json["daemon"]["max_memory_mb"] is None
    assert cleared.json["daemon"]["max_cpu_percent"] == 50.0  # left out: unchanged


def test_create_with_limits(client, clean_db):
    response = client.post(
        "/api/daemons",
        json={"name": "capped", "type": "TEST_DAEMON", "max_memory_mb": 64, "limit_action": "warn"},
    )
    assert response.status_code == 201, response.json
    created = response.json
    assert (created["max_memory_mb"], created["max_cpu_percent"], created["limit_action"]) == (
        64, None, "warn")  # fmt: skip


def test_the_settings_schema_describes_the_limits(client):
    schema = client.get("/api/daemon-types").json["settings_schema"]
    props = schema["properties"]
    memory = props["max_memory_mb"]["anyOf"][0]
    assert (memory["type"], memory["minimum"]) == ("integer", 16)
    cpu = props["max_cpu_percent"]["anyOf"][0]
    assert (cpu["exclusiveMinimum"], cpu["maximum"]) == (0, MAX_CPU_PERCENT)
    assert schema["$defs"]["LimitAction"]["enum"] == ["restart", "stop", "warn"]
    assert all(props[name]["description"] for name in ("max_memory_mb", "max_cpu_percent",
                                                       "limit_action"))  # fmt: skip


def test_null_clears_a_log_cap_too_and_leaves_other_settings(client, daemon):
    assert put(client, daemon, log_max_lines=500, max_restarts=3).status_code == 200
    cleared = put(client, daemon, log_max_lines=None, max_restarts=None, enabled=None)
    assert cleared.json["updated"] == ["log_max_lines"]
    shown = cleared.json["daemon"]
    assert (shown["log_max_lines"], shown["max_restarts"], shown["enabled"]) == (None, 3, True)
