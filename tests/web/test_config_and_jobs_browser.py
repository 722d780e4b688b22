"""A daemon's configuration and job history, and the jobs page, in a real Chromium, against
real daemons and jobs workers.

The tests run in file order and share the seeded Test Daemon, made fast for the module
(``test_daemon`` in conftest.py). Each test names what an operator sees; the last one takes
the screenshots of every page kept under tests/artifacts/screenshots/.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from stashhog.services import daemon_configuration, daemon_queries, job_service
from tests.support.wait import eventually
from tests.web.panel import LIVE, card, open_detail, shot

pytestmark = pytest.mark.browser


def test_invalid_configuration_is_refused_and_nothing_is_saved(page, app, running):
    with app.app_context():
        saved = daemon_queries.get_daemon(running["id"])["configuration"]
    open_detail(page, running, "config")
    editor = page.locator("[data-config-editor]")
    expect(editor).not_to_have_value("")
    status = page.locator("[data-config-status]")

    editor.fill('{"log_interval": 0.2,')
    page.click("[data-config-save]")
    expect(status).to_contain_text("Invalid JSON")
    expect(editor).to_have_class("editor invalid")
    shot(page, "daemon-config-invalid")

    editor.fill('{"log_interval": "fast"}')
    page.click("[data-config-save]")
    expect(status).to_contain_text('"log_interval" must be of type number')

    editor.fill('{"log_interval": -1}')  # refused by the full schema before it is sent
    page.click("[data-config-save]")
    expect(status).to_contain_text('"log_interval" must be at least 0.01')

    with app.app_context():
        assert daemon_queries.get_daemon(running["id"])["configuration"] == saved


def test_an_update_that_leaves_the_configuration_alone_does_not_interrupt_an_edit(
    page, app, test_daemon
):
    """The page's first data and the live events list a configuration's keys in different
    orders (Flask sorts them, PostgreSQL's JSONB does not): the first update after opening
    the page, a heartbeat's say, said "changed while you were editing" over a mistake the
    operator was being shown."""
    with app.app_context():
        saved = daemon_queries.get_daemon(test_daemon["id"])["configuration"]
    open_detail(page, test_daemon, "config")
    editor = page.locator("[data-config-editor]")
    expect(editor).to_have_value(re.compile('"log_interval": 0.2'))
    status = page.locator("[data-config-status]")
    editor.fill('{"log_interval": 0.2,')
    page.click("[data-config-save]")
    expect(status).to_contain_text("Invalid JSON")
    try:
        with app.app_context():  # an update of the row that keeps its configuration
            daemon_configuration.update_daemon(test_daemon["id"], auto_start=True)
        expect(page.locator("#setting-auto_start")).to_be_checked(timeout=LIVE)  # it arrived
        expect(status).to_contain_text("Invalid JSON")
        with app.app_context():  # a real change while editing is still said
            daemon_configuration.update_daemon(
                test_daemon["id"], configuration={"log_interval": 0.3}
            )
        expect(status).to_contain_text("changed while you were editing", timeout=LIVE)
    finally:  # the module's tests share the daemon
        with app.app_context():
            daemon_configuration.update_daemon(
                test_daemon["id"], configuration=saved, auto_start=False
            )


def test_save_and_restart_applies_a_valid_configuration(page, app, running):
    open_detail(page, running, "config")
    before = running_generation(app, running)
    editor = page.locator("[data-config-editor]")
    expect(editor).to_have_value(re.compile('"log_interval": 0.2'))
    editor.fill(editor.input_value().replace('"log_interval": 0.2', '"log_interval": 0.25'))

    page.click("[data-config-save-restart]")

    expect(page.locator("[data-config-status]")).to_contain_text(
        "Saved and restarted", timeout=LIVE
    )
    expect(page.locator("[data-daemon-badge]")).to_have_text("RUNNING", timeout=LIVE)
    with app.app_context():
        daemon = daemon_queries.get_daemon(running["id"])
    assert daemon["configuration"]["log_interval"] == 0.25
    assert daemon["generation"] > before
    with app.app_context():
        daemon_configuration.update_daemon(running["id"], configuration={"log_interval": 0.2})


def running_generation(app, daemon) -> int:
    with app.app_context():
        return daemon_queries.get_daemon(daemon["id"])["generation"]


def test_job_history_shows_a_new_test_job_live(page, running):
    open_detail(page, running, "history")
    rows = page.locator("[data-history-rows] tr[data-history-id]")
    page.wait_for_timeout(300)
    seen = set(rows.evaluate_all("rows => rows.map(r => r.dataset.historyId)"))

    fresh = page.locator("[data-history-rows] tr.fresh", has_text="LAUNCHED")
    expect(fresh.first).to_be_visible(timeout=LIVE)
    entry_id = fresh.first.get_attribute("data-history-id")
    assert entry_id not in seen
    # The highlight lasts 2.2 s; the row stays, so follow it by its id.
    row = page.locator(f'[data-history-rows] tr[data-history-id="{entry_id}"]')
    expect(row).to_contain_text("TEST", timeout=LIVE)
    job_link = row.locator("a")
    assert job_link.get_attribute("href").startswith("/jobs/")
    expect(row).to_contain_text("periodic test job")


def test_cancel_a_job_from_the_jobs_page(page, app, jobs_worker):
    with app.app_context():
        job = job_service.create_job("TEST", {"steps": 100, "step_seconds": 0.3})
        job_id = str(job.id)
    page.goto("/jobs")
    row = page.locator(f'tr[data-job-id="{job_id}"]')
    expect(row.locator(".badge")).to_have_text("running", timeout=LIVE)
    bar = row.locator(".progress")
    expect(bar).not_to_have_attribute("aria-valuenow", "0", timeout=LIVE)  # it moves live

    row.get_by_role("button", name="Cancel").click()

    expect(row.locator(".badge")).to_have_text("cancelled", timeout=LIVE)
    expect(row.get_by_role("button", name="Cancel")).to_be_hidden()
    with app.app_context():
        assert eventually(lambda: job_service.get_job(job_id).status == "cancelled")


def test_cancel_a_job_from_its_page_and_its_running_time_stops(page, app, jobs_worker):
    with app.app_context():
        job_id = str(job_service.create_job("TEST", {"steps": 100, "step_seconds": 0.3}).id)
    page.goto(f"/jobs/{job_id}")
    expect(page.locator("[data-job-badge]")).to_have_text("running", timeout=LIVE)
    ran = page.locator("[data-job-duration]")
    expect(ran).to_have_text(re.compile(r"^[1-9]\d*s$"), timeout=LIVE)  # ticks while it runs

    page.locator("[data-job-cancel]").click()

    expect(page.locator("[data-job-badge]")).to_have_text("cancelled", timeout=LIVE)
    expect(page.locator("[data-job-cancel]")).to_be_hidden()
    with app.app_context():
        assert eventually(lambda: job_service.get_job(job_id).status == "cancelled")
    final = ran.text_content()
    page.wait_for_timeout(1500)
    assert ran.text_content() == final, "the running time went on after the job ended"


def test_screenshots_of_each_page(page, app, running):
    with app.app_context():
        job_id = str(job_service.create_job("TEST", {"steps": 40, "step_seconds": 0.5}).id)
    page.goto("/daemons")
    expect(card(page, running).locator(".badge")).to_have_text("RUNNING", timeout=LIVE)
    page.wait_for_timeout(1200)
    shot(page, "daemons", full_page=True)
    open_detail(page, running)
    expect(page.locator(".log-line").nth(20)).to_be_visible(timeout=LIVE)
    shot(page, "daemon-logs")
    page.click('[data-tab="config"]')
    shot(page, "daemon-config")
    page.click('[data-tab="history"]')
    expect(page.locator("[data-history-rows] tr[data-history-id]").first).to_be_visible()
    shot(page, "daemon-history")
    page.goto("/jobs")
    expect(page.locator(f'tr[data-job-id="{job_id}"] .badge')).to_have_text("running", timeout=LIVE)
    page.wait_for_timeout(1500)
    shot(page, "jobs", full_page=True)
    page.goto(f"/jobs/{job_id}")
    page.wait_for_timeout(1500)
    shot(page, "job-detail", full_page=True)
    page.evaluate("document.documentElement.dataset.theme = 'light'")
    page.goto("/daemons")
    page.evaluate("localStorage.setItem('stashhog-theme', 'light')")
    page.reload()
    page.wait_for_timeout(1200)
    shot(page, "daemons-light", full_page=True)
    page.evaluate("localStorage.removeItem('stashhog-theme')")
    with app.app_context():
        job_service.cancel_job(job_id)
