"""The control panel in a real Chromium, against real daemons and jobs workers.

The tests run in file order and share the seeded Test Daemon, made fast for the session
(``fast_test_daemon``). Each test names what an operator sees; the last one takes the
screenshots kept under tests/artifacts/screenshots/.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

import pytest
from playwright.sync_api import expect
from sqlalchemy import delete

from stashhog.extensions import db
from stashhog.models import Daemon
from stashhog.services import daemon_service, job_service
from stashhog.services.daemon_logs import LogLine, write_log_batch
from tests.support.wait import eventually
from tests.web.conftest import ARTIFACTS

pytestmark = pytest.mark.browser

FAST_CONFIG = {
    "log_interval": 0.2,
    "job_interval": 2,
    "heartbeat_interval": 1,
    "job_metadata": {"steps": 3, "step_seconds": 0.5},
}
LIVE = 15_000  # ms: how long a live change may take to reach the page (workers included)


@pytest.fixture(scope="module")
def test_daemon(app, daemons_worker, jobs_worker):
    """The seeded Test Daemon, stopped, with a fast configuration."""
    with app.app_context():
        daemon = daemon_service.get_daemon("Test Daemon")
        daemon_service.stop_daemon(daemon["id"], wait=10)
        daemon_service.update_daemon(daemon["id"], configuration=FAST_CONFIG, enabled=True)
    yield daemon
    with app.app_context():
        daemon_service.stop_daemon(daemon["id"], wait=10)


@pytest.fixture
def running(app, test_daemon):
    with app.app_context():
        daemon_service.start_daemon(test_daemon["id"], wait=10)
    return test_daemon


def card(page, daemon):
    return page.locator(f'article[data-daemon-id="{daemon["id"]}"]')


def shown_ids(page) -> list[int]:
    return page.eval_on_selector_all(".log-line", "nodes => nodes.map(n => Number(n.dataset.id))")


def server_ids(app, daemon, after_id: int, before_id: int) -> list[int]:
    with app.app_context():
        lines = daemon_service.get_logs(
            daemon["id"], after_id=after_id, before_id=before_id, limit=1000, order="asc"
        )
    return [line["id"] for line in lines]


def shot(page, name: str, **options) -> None:
    """A screenshot kept with the CI artifacts (tests/artifacts/screenshots/)."""
    folder = ARTIFACTS / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=folder / f"{name}.png", **options)


def next_frame(page) -> None:
    """Lines are drawn once per animation frame: let one pass."""
    page.evaluate("new Promise(resolve => requestAnimationFrame(() => resolve()))")


def open_detail(page, daemon, tab: str = "") -> None:
    page.goto(f"/daemons/{daemon['id']}{'#' + tab if tab else ''}")
    expect(page.locator("#live-pill")).to_have_attribute("data-state", "live")


def test_index_redirects_to_daemons(page):
    page.goto("/")
    expect(page).to_have_url("/daemons")
    expect(page.locator("h1")).to_have_text("Daemons")


def test_start_from_card_shows_running_without_reload(page, test_daemon):
    page.goto("/daemons")
    item = card(page, test_daemon)
    expect(item.locator(".badge")).to_have_text("STOPPED")
    expect(page.locator("#live-pill")).to_have_attribute("data-state", "live")
    page.evaluate("window.__sameDocument = true")

    item.locator('[data-action="start"]').click()

    expect(item.locator(".badge")).to_have_text("RUNNING", timeout=LIVE)
    expect(item.locator(".health")).to_have_attribute("data-health", "healthy", timeout=LIVE)
    expect(item.locator('[data-action="start"]')).to_be_disabled()
    expect(item.locator('[data-action="stop"]')).to_be_enabled()
    expect(item.locator(".metric .value").nth(1)).to_have_text(re.compile(r"^\d+ s ago$"))
    expect(item.locator(".status-line")).to_contain_text("iteration", timeout=LIVE)
    assert page.evaluate("window.__sameDocument") is True, "the page was reloaded"


def test_detail_page_streams_new_log_lines(page, running):
    open_detail(page, running)
    expect(page.locator(".log-line").first).to_be_visible(timeout=LIVE)
    newest = max(shown_ids(page))
    page.wait_for_function(
        "newest => [...document.querySelectorAll('.log-line')].some(n => +n.dataset.id > newest)",
        arg=newest,
        timeout=LIVE,
    )


def test_level_filter_shows_that_level_and_above(page, running):
    open_detail(page, running)
    expect(page.locator(".log-line.lvl-DEBUG").first).to_be_visible(timeout=LIVE)

    page.select_option("[data-log-level]", "WARNING")

    expect(page.locator(".log-line.lvl-WARNING").first).to_be_visible(timeout=LIVE)
    newest = max(shown_ids(page))
    page.wait_for_timeout(2500)  # live lines of every level keep arriving meanwhile
    levels = page.eval_on_selector_all(".log-line .l", "nodes => nodes.map(n => n.textContent)")
    assert levels and set(levels) <= {"WARNING", "ERROR"}, levels
    assert newest <= max(shown_ids(page))


def test_pause_keeps_lines_and_shows_them_on_resume(page, app, running):
    open_detail(page, running)
    expect(page.locator(".log-line").first).to_be_visible(timeout=LIVE)
    page.click("[data-log-pause]")
    next_frame(page)
    paused_at = max(shown_ids(page))

    page.wait_for_timeout(2000)
    assert max(shown_ids(page)) == paused_at, "lines were drawn while paused"
    expect(page.locator("[data-log-paused]")).to_be_visible()
    expect(page.locator("[data-log-paused]")).not_to_contain_text("— 0 new")

    page.click("[data-log-pause]")

    next_frame(page)
    after = [i for i in shown_ids(page) if i > paused_at]
    assert after, "no lines shown on resume"
    assert after == server_ids(app, running, paused_at, after[-1] + 1), "lines were lost"


def test_export_writes_the_shown_lines(page, running):
    open_detail(page, running)
    expect(page.locator(".log-line").nth(5)).to_be_visible(timeout=LIVE)
    page.click("[data-log-pause]")  # a still view, so the file and the screen can be compared
    next_frame(page)
    shown = page.eval_on_selector_all(
        ".log-line",
        "nodes => nodes.map(n => n.querySelector('.l').textContent.padEnd(7) + ' '"
        " + n.querySelector('.m').textContent)",
    )

    with page.expect_download() as download_info:
        page.click("[data-log-export]")
    download = download_info.value

    assert download.suggested_filename.startswith("test-daemon-logs-")
    assert download.suggested_filename.endswith(".txt")
    with open(download.path(), encoding="utf-8") as file:
        exported = file.read().splitlines()
    assert [line.split(" ", 1)[1] for line in exported] == shown


def test_log_message_with_markup_is_shown_as_text(page, app, running):
    open_detail(page, running)
    expect(page.locator(".log-line").first).to_be_visible(timeout=LIVE)
    message = '<script>window.__injected = 1</script><b id="injected">bold</b>'
    with app.app_context():
        generation = daemon_service.get_daemon(running["id"])["generation"]
        line = LogLine(10**9, "ERROR", message, datetime.now(UTC))
        write_log_batch(running["id"], generation, [line])

    shown = page.locator(".log-line .m", has_text="window.__injected")
    expect(shown).to_have_text(message, timeout=LIVE)
    assert page.locator("#injected").count() == 0
    assert page.evaluate("window.__injected") is None


def test_invalid_configuration_is_refused_and_nothing_is_saved(page, app, running):
    with app.app_context():
        saved = daemon_service.get_daemon(running["id"])["configuration"]
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

    editor.fill('{"log_interval": -1}')
    page.click("[data-config-save]")
    expect(status).to_contain_text("Not saved (log_interval)")

    with app.app_context():
        assert daemon_service.get_daemon(running["id"])["configuration"] == saved


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
        daemon = daemon_service.get_daemon(running["id"])
    assert daemon["configuration"]["log_interval"] == 0.25
    assert daemon["generation"] > before
    with app.app_context():
        daemon_service.update_daemon(running["id"], configuration={"log_interval": 0.2})


def running_generation(app, daemon) -> int:
    with app.app_context():
        return daemon_service.get_daemon(daemon["id"])["generation"]


def test_job_history_shows_a_new_test_job_live(page, running):
    open_detail(page, running, "history")
    rows = page.locator("[data-history-rows] tr[data-history-id]")
    page.wait_for_timeout(300)
    seen = set(rows.evaluate_all("rows => rows.map(r => r.dataset.historyId)"))

    fresh = page.locator("[data-history-rows] tr.fresh", has_text="LAUNCHED")
    expect(fresh.first).to_be_visible(timeout=LIVE)
    row = fresh.first
    assert row.get_attribute("data-history-id") not in seen
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


def test_reconnect_shows_state_and_fills_the_gap(page, app, relay, running, monkeypatch):
    open_detail(page, running)
    expect(page.locator(".log-line").first).to_be_visible(timeout=LIVE)
    before = max(shown_ids(page))

    # The relay refuses connections for a while, then drops the open ones: a real outage.
    monkeypatch.setattr(relay, "connect", _refuse)
    for conn in list(relay._connections):
        relay._drop_slow(conn)
    expect(page.locator("#live-banner")).to_be_visible(timeout=LIVE)
    expect(page.locator("#live-pill")).to_have_attribute("data-state", "reconnecting")
    shot(page, "reconnecting")
    page.wait_for_timeout(2500)  # lines written now reach no browser
    monkeypatch.undo()

    expect(page.locator("#live-pill")).to_have_attribute("data-state", "live", timeout=LIVE)
    expect(page.locator("#live-banner")).to_be_hidden()
    newest = page.wait_for_function(
        f"() => Math.max(...[...document.querySelectorAll('.log-line')].map(n => +n.dataset.id))"
        f" > {before} + 10 && Math.max(...[...document.querySelectorAll('.log-line')]"
        ".map(n => +n.dataset.id))",
        timeout=LIVE,
    ).json_value()
    ids = [i for i in shown_ids(page) if before < i <= newest]
    assert ids == server_ids(app, running, before, newest + 1), "a gap after reconnecting"


def _refuse(ws):
    from simple_websocket import ConnectionClosed

    raise ConnectionClosed()


@pytest.fixture
def burst_daemon(app, daemons_worker):
    """A daemon that logs 3,000 numbered lines at once after it starts."""
    with app.app_context():
        daemon = Daemon(name=f"burst-{uuid.uuid4().hex[:6]}", type="TEST_BURST",
                        configuration={"lines": 3000})  # fmt: skip
        db.session.add(daemon)
        db.session.commit()
        daemon_id = str(daemon.id)
        db.session.remove()
    yield {"id": daemon_id}
    with app.app_context():
        daemon_service.stop_daemon(daemon_id, wait=10)
        db.session.execute(delete(Daemon).where(Daemon.id == uuid.UUID(daemon_id)))
        db.session.commit()


def test_long_logs_keep_a_bounded_window_and_load_older_lines(page, app, burst_daemon):
    open_detail(page, burst_daemon)
    page.click('[data-action="start"]')
    expect(page.locator("[data-daemon-status-line]")).to_have_text(
        "emitted 3000 lines", timeout=LIVE
    )
    expect(page.locator("[data-log-gap]")).to_contain_text("older lines hidden", timeout=LIVE)
    expect(page.locator(".log-line .m").last).to_have_text("line 2999")
    expect(page.locator(".log-line")).to_have_count(1000)

    page.click("[data-older]")
    expect(page.locator(".log-line")).to_have_count(1500)

    page.reload()  # a fresh page holds the newest 500; the rest is on the server
    expect(page.locator(".log-line")).to_have_count(500)
    expect(page.locator("[data-log-gap]")).to_contain_text("Earlier lines are on the server")
    page.click("[data-older]")
    expect(page.locator(".log-line")).to_have_count(1000)
    ids = shown_ids(page)
    assert ids == server_ids(app, burst_daemon, ids[0] - 1, ids[-1] + 1)


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
