"""The resource limits in a daemon's Settings form (generated from the settings schema): a
bad value shown inline before sending, saved, and a limit cleared by emptying its field; a
breach shown as a toast on the daemon's page."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from stashhog.services import daemon_queries
from stashhog.services.daemon_limits import Breach, publish_breach
from tests.web.panel import shot

pytestmark = pytest.mark.browser


def test_limits_are_edited_in_the_settings_form(page, app, make_daemon):
    daemon = make_daemon(name="limits form")
    page.goto(f"/daemons/{daemon.id}#config")
    memory = page.locator("input[name=max_memory_mb]")
    expect(memory).to_have_value("")
    expect(page.locator("[data-field=max_memory_mb] .field-help")).to_contain_text("RSS")
    expect(page.locator("select[name=limit_action]")).to_have_value('"restart"')
    page.fill("input[name=max_cpu_percent]", "0")
    expect(page.locator("#setting-max_cpu_percent-error")).to_contain_text("greater than 0")
    page.fill("input[name=max_cpu_percent]", "50")
    memory.fill("256")
    page.select_option("select[name=limit_action]", '"stop"')
    page.click("[data-settings-save]")
    expect(page.locator("[data-settings-status]")).to_contain_text(
        "Saved: limit_action, max_cpu_percent, max_memory_mb"
    )
    shot(page, "daemon-settings-limits")
    with app.app_context():
        saved = daemon_queries.get_daemon(daemon.id)
    assert (saved["max_memory_mb"], saved["max_cpu_percent"], saved["limit_action"]) == (
        256, 50.0, "stop")  # fmt: skip

    memory.fill("")  # no memory limit again
    page.click("[data-settings-save]")
    expect(page.locator("[data-settings-status]")).to_contain_text("Saved: max_memory_mb")
    with app.app_context():
        assert daemon_queries.get_daemon(daemon.id)["max_memory_mb"] is None

    # A breach (as the runtime publishes it) is told on the daemon's page as it happens.
    expect(page.locator("#live-pill")).to_have_attribute("data-state", "live")
    breach = Breach("max_memory_mb", 230.0, 200, "stop")
    with app.app_context():
        publish_breach(daemon.id, breach)
    expect(page.locator("#toasts .toast.tone-bad")).to_have_text(breach.message)
    shot(page, "daemon-limit-toast")
