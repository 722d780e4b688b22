"""``PUT /api/daemons/{id}`` refuses configurations that would overload the system: intervals
below their minimums, too many jobs, too many lines, and job metadata the TEST job would
reject; nothing is stored. ``log_lines_dropped`` is part of the daemon's shape."""

from __future__ import annotations

import pytest

from stashhog.api.responses import DaemonOut, DaemonUpdated
from tests.api.conftest import error_of, set_row


def put(client, daemon, configuration):
    return client.put(f"/api/daemons/{daemon.id}", json={"configuration": configuration})


@pytest.mark.parametrize(
    ("configuration", "key_name"),
    [
        ({"log_interval": 5e-324}, "log_interval"),
        ({"log_interval": 0.009}, "log_interval"),
        ({"job_interval": 5e-324}, "job_interval"),
        ({"job_interval": 0.4}, "job_interval"),
        ({"heartbeat_interval": 0.05}, "heartbeat_interval"),
        ({"lines_per_iteration": 0}, "lines_per_iteration"),
        ({"lines_per_iteration": 10_001}, "lines_per_iteration"),
        ({"max_active_jobs": 0}, "max_active_jobs"),
        ({"max_active_jobs": 1001}, "max_active_jobs"),
        ({"job_metadata": {"bogus": 1}}, "job_metadata.bogus"),
        ({"job_metadata": {"steps": 0}}, "job_metadata.steps"),
        ({"job_metadata": {"step_seconds": "2"}}, "job_metadata.step_seconds"),
    ],
)
def test_a_configuration_past_a_limit_is_422_naming_the_key_and_stores_nothing(
    client, daemon, unchanged, configuration, key_name
):
    with unchanged():
        error = error_of(put(client, daemon, configuration), 422, "invalid_configuration")
    assert error["key"] == key_name
    assert key_name in error["message"]


def test_the_minimums_themselves_are_accepted_and_job_metadata_is_stored_as_given(client, daemon):
    limits = {
        "log_interval": 0.01,
        "job_interval": 0.5,
        "heartbeat_interval": 0.1,
        "lines_per_iteration": 10_000,
        "max_active_jobs": 1,
        "job_metadata": {"steps": 2},
    }
    response = put(client, daemon, limits)
    assert response.status_code == 200, response.get_json()
    body = DaemonUpdated.model_validate(response.get_json())
    assert body.daemon.configuration == {"log_interval": 0.01, **limits}


def test_the_daemon_shape_counts_the_log_lines_its_run_dropped(client, daemon):
    assert DaemonOut.model_validate(client.get(f"/api/daemons/{daemon.id}").get_json())
    assert client.get(f"/api/daemons/{daemon.id}").get_json()["log_lines_dropped"] == 0
    set_row(daemon.id, log_lines_dropped=1234)  # as the runtime writes it
    listed = client.get("/api/daemons").get_json()["daemons"]
    assert next(d for d in listed if d["id"] == str(daemon.id))["log_lines_dropped"] == 1234
