"""The daemons page with hundreds of daemons in a real Chromium: every card rendered, a burst
of live updates applied in a few renders (not one per event, not a full re-render), and the
health banner's warning when every daemons worker slot is busy."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect
from sqlalchemy import text

from stashhog.extensions import db
from stashhog.services import daemon_control
from stashhog.services.daemon_queries import all_daemon_rows
from stashhog.services.daemon_state import change_daemon
from stashhog.services.health import INSPECTION_MAX_AGE, INSPECTION_TIMEOUT
from tests.web.panel import LIVE

pytestmark = pytest.mark.browser
MANY = 300
SEED = """
INSERT INTO daemons (id, name, type, configuration, enabled, auto_start, status, desired_state,
    generation, restart_policy, max_restarts, restart_window, restart_count, log_lines_dropped,
    depends_on, created_at, updated_at)
SELECT gen_random_uuid(), 'many-' || lpad(i::text, 4, '0'), 'TEST_DAEMON', '{}'::jsonb, true,
    false, 'STOPPED', 'STOPPED', 0, 'on-failure', 5, 300, 0, 0, '[]'::jsonb, now(), now()
FROM generate_series(1, :count) AS i
"""
# Counts the summary's repaints (one per render) and marks a card node, during a burst.
WATCH_JS = """() => {
  window.__renders = 0;
  new MutationObserver(() => { window.__renders += 1; })
    .observe(document.querySelector('#daemon-summary'), {childList: true});
  document.querySelector('#daemon-cards article').__kept = true;
}"""
SHOWN_WITHIN_MS = int((10 + INSPECTION_MAX_AGE + 2 * INSPECTION_TIMEOUT + 2) * 1000)


@pytest.fixture
def many(clean_db):
    db.session.execute(text(SEED), {"count": MANY})
    db.session.commit()
    yield [row for row in all_daemon_rows() if row.name.startswith("many-")]
    db.session.execute(text("DELETE FROM daemons WHERE name LIKE 'many-%'"))
    db.session.commit()


def test_hundreds_of_cards_render_and_a_burst_of_updates_applies_in_few_renders(page, many):
    started = time.monotonic()
    page.goto("/daemons")
    expect(page.locator("#daemon-cards article")).to_have_count(MANY + 1)  # and the seed
    assert time.monotonic() - started < 5
    expect(page.locator("#daemon-summary")).to_contain_text(f"{MANY + 1} daemons")
    expect(page.locator("#live-pill")).to_have_attribute("data-state", "live")
    page.evaluate(WATCH_JS)
    for row in many:  # as fast as one process writes: a burst of daemon_update events
        change_daemon(row.id, status_line=f"burst {row.name}")
    last = many[-1]
    expect(page.locator(f'article[data-daemon-id="{last.id}"] .status-line')).to_have_text(
        f"burst {last.name}", timeout=LIVE
    )
    for row in many[:: MANY // 10]:
        expect(page.locator(f'article[data-daemon-id="{row.id}"] .status-line')).to_have_text(
            f"burst {row.name}"
        )
    renders = page.evaluate("window.__renders")
    assert 0 < renders < MANY / 3, f"{renders} renders for {MANY} events"
    assert page.evaluate("document.querySelector('#daemon-cards article').__kept === true")


def test_the_banner_warns_when_every_daemons_worker_slot_is_busy(
    page, client, make_daemon, daemons_worker, jobs_worker
):
    slots = None
    deadline = time.monotonic() + 10
    while slots is None and time.monotonic() < deadline:  # pool sizes come with an inspection
        slots = client.get("/api/health").get_json()["daemon_slots"]
        time.sleep(0.5)
    assert slots is not None
    quiet = {"log_interval": 3600, "heartbeat_interval": 1, "job_interval": 3600}
    started = [make_daemon(configuration=quiet) for _ in range(slots["slots"] - slots["busy"])]
    try:
        for daemon in started:
            assert daemon_control.start_daemon(daemon.id, wait=10)["daemon"]["status"] == "RUNNING"
        page.goto("/daemons")
        banner = page.locator("#health-banner")
        expect(banner).to_be_visible(timeout=SHOWN_WITHIN_MS)
        full = f"daemons workers are full ({slots['slots']} of {slots['slots']} slots busy)"
        expect(banner).to_contain_text(full)
        expect(banner).not_to_have_class("banner error")  # a warning, not a failure
    finally:
        for daemon in started:
            daemon_control.stop_daemon(daemon.id, wait=10)
    page.reload()
    expect(page.locator("#health-banner")).to_be_hidden(timeout=SHOWN_WITHIN_MS)
