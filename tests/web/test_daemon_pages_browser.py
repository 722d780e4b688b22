"""The daemons list and a daemon's live logs in a real Chromium, against real daemons and jobs
workers.

The tests run in file order and share the seeded Test Daemon, made fast for the module
(``test_daemon`` in conftest.py). Each test names what an operator sees.
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
from stashhog.services import daemon_control, daemon_queries, lease
from stashhog.services.daemon_logs import LogLine, write_log_batch
from tests.web.panel import LIVE, card, next_frame, open_detail, server_ids, shot, shown_ids

pytestmark = pytest.mark.browser


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
        generation = daemon_queries.get_daemon(running["id"])["generation"]
        line = LogLine(10**9, "ERROR", message, datetime.now(UTC))
        write_log_batch(running["id"], generation, [line])

    shown = page.locator(".log-line .m", has_text="window.__injected")
    expect(shown).to_have_text(message, timeout=LIVE)
    assert page.locator("#injected").count() == 0
    assert page.evaluate("window.__injected") is None


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
        daemon_control.stop_daemon(daemon_id, wait=10)
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


@pytest.fixture
def silent_daemon(app):
    """A RUNNING row whose instance holds its lease but will never beat again (no worker runs
    it): healthy for 2 x 3 s + 0.5 s after its last heartbeat, then overdue."""
    now = datetime.now(UTC)
    with app.app_context():
        daemon = Daemon(name=f"silent-{uuid.uuid4().hex[:6]}", type="TEST_DAEMON",
                        configuration={"heartbeat_interval": 3}, status="RUNNING",
                        desired_state="RUNNING", generation=1, started_at=now,
                        last_heartbeat=now)  # fmt: skip
        db.session.add(daemon)
        db.session.commit()
        daemon_id = daemon.id
        db.session.remove()
        lease.acquire_lease(daemon_id, 1, ttl=60)
    yield {"id": str(daemon_id)}
    with app.app_context():
        lease.release_lease(daemon_id, 1)
        db.session.execute(delete(Daemon).where(Daemon.id == daemon_id))
        db.session.commit()


def test_a_daemon_that_stops_beating_turns_unhealthy_without_any_event(page, silent_daemon):
    open_detail(page, silent_daemon)
    health = page.locator("[data-daemon-health]")
    expect(health).to_have_attribute("data-health", "healthy")

    # Nothing is published meanwhile: the page compares heartbeat_deadline with its clock.
    expect(health).to_have_attribute("data-health", "unhealthy", timeout=LIVE)
    expect(health).to_contain_text("heartbeat overdue")
