"""A crash end to end on real workers: a run with its error, process samples, an alert that
reaches a webhook on loopback within seconds, and its resolve."""

from __future__ import annotations

import time

import pytest

from stashhog.services import supervisor
from stashhog.services.daemon_control import start_daemon, stop_daemon
from tests.support.wait import eventually

pytestmark = pytest.mark.usefixtures("sampling_worker", "jobs_worker")
FAST = {"log_interval": 0.2, "heartbeat_interval": 0.5, "job_interval": 3600}


def passes_until(probe, timeout: float = 10.0):
    def one():
        supervisor.reconcile()
        return probe()

    return eventually(one, timeout=timeout, interval=0.3)


def test_a_crash_is_a_run_with_its_error_an_alert_and_a_webhook(
    client, make_daemon, clean_alerts, receiver
):
    hook = receiver()
    assert (
        client.post("/api/alerts/channels", json={"type": "webhook", "url": hook.url}).status_code
        == 201
    )
    daemon = make_daemon(configuration={**FAST, "crash_after": 2.0}, restart_policy="never")
    start_daemon(daemon.id, wait=3)
    status = lambda: client.get(f"/api/daemons/{daemon.id}").json["status"]  # noqa: E731
    crashed_at = eventually(lambda: status() == "ERROR" and time.monotonic(), timeout=10)
    run = client.get(f"/api/daemons/{daemon.id}/runs").json["runs"][0]
    assert run["outcome"] == "crashed" and "crash_after" in run["error"]
    assert run["lines_logged"] > 0 and run["peak_rss"] > 10 * 1024 * 1024
    points = client.get(f"/api/daemons/{daemon.id}/metrics?range=15m").json["points"]
    assert len(points) >= 2 and all(p["rss"] > 0 for p in points)

    firing = passes_until(lambda: [e for e in hook.events() if e["event"] == "firing"])
    assert time.monotonic() - crashed_at < 8
    assert {e["rule"] for e in firing} == {"daemon_error"}
    assert firing[0]["daemon_id"] == str(daemon.id) and "crash_after" in firing[0]["message"]
    listed = client.get("/api/alerts?status=firing").json
    assert listed["firing"] == 1 and listed["alerts"][0]["rule"] == "daemon_error"
    # The supervisor's give-up (restart_policy never) is a second rule, off budget: still one
    # notification per firing, never repeated by later passes.
    for _ in range(5):
        supervisor.reconcile()
    assert len([e for e in hook.events() if e["rule"] == "daemon_error"]) == 1

    start_daemon(daemon.id, wait=3)  # out of ERROR: the alert resolves
    resolved = passes_until(lambda: [e for e in hook.events() if e["event"] == "resolved"])
    assert resolved[0]["alert_id"] == firing[0]["alert_id"]
    stop_daemon(daemon.id, wait=3)
    channel = client.get("/api/alerts/channels").json["channels"][0]
    log = client.get(f"/api/alerts/channels/{channel['id']}/deliveries").json["deliveries"]
    assert log and all(d["ok"] and d["status_code"] == 204 for d in log)


def test_a_failing_webhook_is_retried_with_backoff_and_logged(
    client, make_daemon, clean_alerts, receiver
):
    hook = receiver(fail_first=2)
    client.post("/api/alerts/channels", json={"type": "webhook", "url": hook.url})
    daemon = make_daemon(configuration={**FAST, "crash_after": 0.5}, restart_policy="never")
    start_daemon(daemon.id, wait=3)
    passes_until(lambda: hook.events(), timeout=15)
    channel = client.get("/api/alerts/channels").json["channels"][0]
    log = client.get(f"/api/alerts/channels/{channel['id']}/deliveries").json["deliveries"]
    assert [(d["attempt"], d["ok"], d["status_code"]) for d in reversed(log)] == [
        (1, False, 500),
        (2, False, 500),
        (3, True, 204),
    ]
