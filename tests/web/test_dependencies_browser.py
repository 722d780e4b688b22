"""Dependencies in a real Chromium: set depends_on from a daemon's Settings, see "needs X" on
its card and in the dependency view, start it (what it needs comes up first) and stop what it
needs, confirming that it stops first."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from stashhog.extensions import db
from stashhog.models import Daemon
from stashhog.services import supervisor
from tests.api.conftest import stop_everything  # noqa: F401  (a fixture)
from tests.support.dependencies import TICKER
from tests.support.wait import eventually
from tests.web.panel import LIVE, card, open_detail, shot

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("daemons_worker", "stop_everything")]


def row(daemon) -> Daemon:
    db.session.expire_all()
    return db.session.get(Daemon, daemon.id)


def test_a_dependency_set_in_settings_shows_on_the_card_and_orders_start_and_stop(
    page, make_daemon
):
    needed = make_daemon("ui-needed", type="TEST_TICKER", configuration=TICKER)
    needy = make_daemon("ui-needy", type="TEST_TICKER", configuration=TICKER)
    ids = {"id": str(needy.id)}, {"id": str(needed.id)}

    open_detail(page, ids[0], "config")
    choice = page.locator(f'[data-field=depends_on] input[value="{needed.id}"]')
    expect(choice).to_be_visible()
    expect(page.locator(f'[data-field=depends_on] input[value="{needy.id}"]')).to_have_count(0)
    choice.check()
    shot(page, "dependencies-settings")
    page.click("[data-settings-save]")
    expect(page.locator("[data-settings-status]")).to_contain_text("Saved: depends_on")
    assert row(needy).depends_on == [str(needed.id)]

    page.goto("/daemons")
    needs = card(page, ids[0]).locator(".card-needs")
    expect(needs).to_have_text("needs ui-needed")
    expect(card(page, ids[1]).locator(".card-needs")).to_be_hidden()
    view = page.locator("#daemon-deps")
    expect(view.locator(f'tr[data-daemon-id="{needy.id}"]')).to_contain_text("ui-needed")
    expect(view.locator(f'tr[data-daemon-id="{needed.id}"]')).to_contain_text("ui-needy")
    shot(page, "dependencies-cards")

    # Start the daemon that needs the other: what it needs starts, it waits for it (visibly)
    # and the supervisor starts it once the other has a heartbeat.
    card(page, ids[0]).locator("[data-action=start]").click()
    expect(card(page, ids[1]).locator(".badge")).to_have_text("RUNNING", timeout=LIVE)
    expect(needs).to_have_text("waiting for ui-needed")
    expect(card(page, ids[0]).locator(".status-line")).to_have_text("waiting for ui-needed")
    shot(page, "dependencies-waiting")
    eventually(lambda: supervisor.reconcile() and row(needy).status != "STOPPED", timeout=10)
    expect(card(page, ids[0]).locator(".badge")).to_have_text("RUNNING", timeout=LIVE)
    expect(needs).to_have_text("needs ui-needed")

    # Stopping what it needs asks first, naming the daemon that will stop with it.
    card(page, ids[1]).locator("[data-action=stop]").click()
    expect(page.locator("#confirm-dialog h2")).to_have_text("Stop ui-needed and what needs it?")
    expect(page.locator("#confirm-dialog p")).to_contain_text("ui-needy depends on ui-needed")
    shot(page, "dependencies-stop-confirm")
    page.click("#confirm-dialog [data-confirm]")
    expect(card(page, ids[0]).locator(".badge")).to_have_text("STOPPED", timeout=LIVE)
    expect(card(page, ids[1]).locator(".badge")).to_have_text("STOPPED", timeout=LIVE)

    # The order is in the logs: why each started, and the order the dependent saw.
    open_detail(page, ids[1])
    expect(
        page.locator(".log-line", has_text="starting ui-needed: needed by ui-needy")
    ).to_have_count(1)
    open_detail(page, ids[0])
    expect(page.locator(".log-line", has_text="start order: ui-needed → ui-needy")).to_have_count(1)
    expect(
        page.locator(".log-line", has_text="stopping ui-needy first: it needs ui-needed")
    ).to_have_count(1)
    shot(page, "dependencies-logs")
