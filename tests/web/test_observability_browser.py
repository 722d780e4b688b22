"""The observability panel in a real browser: a crash shows as a run, a red badge in the
header (live, from the supervisor pass's alert_update event) and a memory chart."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import expect
from sqlalchemy import text

from stashhog.extensions import db
from stashhog.models import Daemon
from stashhog.services import supervisor
from stashhog.services.daemon_control import start_daemon
from tests.support.wait import eventually

CRASHING = {"log_interval": 0.2, "heartbeat_interval": 0.5, "job_interval": 3600,
            "crash_after": 6.0}  # fmt: skip


@pytest.fixture
def crashing(app, daemons_worker):
    with app.app_context():
        db.session.execute(text("DELETE FROM alerts"))
        daemon = Daemon(name=f"crashing-{uuid.uuid4().hex[:6]}", type="TEST_DAEMON",
                        configuration=CRASHING, restart_policy="never")  # fmt: skip
        db.session.add(daemon)
        db.session.commit()
        daemon_id = daemon.id
        yield daemon_id
        db.session.execute(text("DELETE FROM daemons WHERE id = :id"), {"id": daemon_id})
        db.session.commit()
        db.session.remove()


def test_a_crash_shows_as_a_run_a_badge_and_a_memory_chart(app, page, crashing):
    page.goto("/daemons")
    badge = page.locator("[data-alert-badge]")
    expect(badge).to_be_hidden()
    with app.app_context():
        start_daemon(crashing, wait=3)

        def crashed_and_evaluated():
            supervisor.reconcile()
            return db.session.get(Daemon, crashing, populate_existing=True).status == "ERROR"

        eventually(crashed_and_evaluated, timeout=15, interval=0.3)
        supervisor.reconcile()
    expect(badge).to_have_text("1", timeout=5000)
    card = page.locator(f'article[data-daemon-id="{crashing}"]')
    expect(card.locator(".card-alert")).to_contain_text("is ERROR")
    expect(card.locator("canvas.sparkline")).to_have_attribute("title", re.compile("RSS"))

    page.goto(f"/daemons/{crashing}#runs")
    run = page.locator("[data-run-rows] tr").first
    expect(run).to_have_attribute("data-outcome", "crashed")
    expect(run).to_contain_text("crash_after")
    page.locator('[data-tab="metrics"]').click()
    expect(page.locator("[data-chart=rss] canvas")).to_be_visible()
    expect(page.locator("[data-metrics-note]")).to_contain_text("points")

    page.goto("/alerts")
    expect(page.locator('[data-alert-rows] tr[data-status="firing"]')).to_contain_text(
        "daemon_error"
    )


def test_log_search_highlights_the_matches(app, page, crashing):
    with app.app_context():
        from stashhog.services.daemon_logs import write_supervisor_log

        write_supervisor_log(crashing, "INFO", "disk quota exceeded on /data")
        write_supervisor_log(crashing, "INFO", "all quiet")
    page.goto(f"/daemons/{crashing}")
    page.fill("[data-log-search]", '"quota exceeded"')
    page.press("[data-log-search]", "Enter")
    lines = page.locator(".log-line")
    expect(lines).to_have_count(1)
    expect(lines.first.locator("mark")).to_have_text("quota exceeded")
