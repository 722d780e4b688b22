"""Daemons from types in a real Chromium: create from the generated form (a bad value shown
inline first), start, see the cards appear live on another open page, edit the settings with
If-Match, and delete with a confirmation that names the daemon."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from stashhog.extensions import db
from stashhog.models import Daemon
from stashhog.services import daemon_configuration, daemon_control, daemon_queries
from tests.web.panel import LIVE, card, shot

pytestmark = pytest.mark.browser


@pytest.fixture
def cleanup(app):
    """Daemons the test creates are stopped and deleted afterwards."""
    before = {daemon["id"] for daemon in _all(app)}
    yield
    with app.app_context():
        for daemon in daemon_queries.list_daemons():
            if daemon["id"] not in before:
                daemon_control.stop_daemon(daemon["id"], wait=10)
                db.session.delete(db.session.get(Daemon, daemon["id"]))
                db.session.commit()


def _all(app) -> list[dict]:
    with app.app_context():
        return daemon_queries.list_daemons()


def by_name(app, name: str) -> dict:
    (daemon,) = [d for d in _all(app) if d["name"] == name]
    return daemon


def new_daemon_form(page, daemon_type: str) -> None:
    page.goto("/daemons")
    page.click("[data-new-daemon]")
    expect(page).to_have_url(re.compile(r"/daemons/new$"))
    page.select_option("select[name=type]", daemon_type)
    expect(page.locator("[data-config-form] [data-field]").first).to_be_visible()


def test_create_start_edit_and_delete_daemons_from_the_panel(
    page, app, daemons_worker, jobs_worker, cleanup, tmp_path
):
    watcher = page.context.new_page()
    watcher.goto("/daemons")
    expect(watcher.locator("#live-pill")).to_have_attribute("data-state", "live")

    # A second Test Daemon: a bad value is shown next to its field before anything is sent.
    new_daemon_form(page, "TEST_DAEMON")
    page.fill("input[name=name]", "Browser test daemon")
    page.fill("input[name=log_interval]", "-1")
    expect(page.locator("#config-log_interval-error")).to_contain_text("at least 0.01")
    page.click("[data-create]")
    expect(page.locator("[data-form-status]")).to_contain_text("Fix the highlighted fields")
    assert not [d for d in _all(app) if d["name"] == "Browser test daemon"]
    shot(page, "daemon-new-invalid")
    page.fill("input[name=log_interval]", "0.5")
    page.fill("input[name=heartbeat_interval]", "1")
    page.click("[data-create]")
    expect(page).to_have_url(re.compile(r"/daemons/[0-9a-f-]{36}$"))
    expect(page.locator("[data-daemon-badge]")).to_have_text("RUNNING", timeout=LIVE)
    test_daemon = by_name(app, "Browser test daemon")
    assert test_daemon["configuration"] == {"log_interval": 0.5, "heartbeat_interval": 1}

    # A watcher over a folder, from the same form (its roots are a list field).
    new_daemon_form(page, "METADATA_GENERATE_WATCHER")
    page.fill("input[name=name]", "Browser test watcher")
    page.fill("textarea[name=roots]", str(tmp_path))
    shot(page, "daemon-new-watcher")
    page.click("[data-create]")
    expect(page.locator("[data-daemon-badge]")).to_have_text("RUNNING", timeout=LIVE)
    made_watcher = by_name(app, "Browser test watcher")
    assert made_watcher["configuration"]["roots"] == [str(tmp_path)]

    # Both cards appeared live on the page that was already open.
    expect(card(watcher, test_daemon)).to_contain_text("Browser test daemon", timeout=LIVE)
    expect(card(watcher, made_watcher)).to_contain_text("RUNNING", timeout=LIVE)

    # Edit the restart policy in the Settings section.
    page.goto(f"/daemons/{test_daemon['id']}#config")
    page.select_option("select[name=restart_policy]", '"never"')
    page.fill("input[name=max_restarts]", "2")
    page.click("[data-settings-save]")
    expect(page.locator("[data-settings-status]")).to_contain_text(
        "Saved: max_restarts, restart_policy"
    )
    changed = by_name(app, "Browser test daemon")
    assert (changed["restart_policy"], changed["max_restarts"]) == ("never", 2)

    # Someone else saves meanwhile: this page's edit is refused, not silently applied.
    page.fill("input[name=max_restarts]", "3")
    with app.app_context():
        daemon_configuration.update_daemon(test_daemon["id"], restart_window=900)
    page.wait_for_timeout(300)  # the daemon_update event arrives while the field is dirty
    page.click("[data-settings-save]")
    expect(page.locator("[data-settings-status]")).to_contain_text("someone else changed")
    assert by_name(app, "Browser test daemon")["max_restarts"] == 2
    shot(page, "daemon-settings-conflict")

    # Delete: refused while running, then done after a stop, with a confirmation naming it.
    page.reload()
    page.click("[data-daemon-delete]")
    expect(page.locator("#confirm-dialog h2")).to_have_text('Delete daemon "Browser test daemon"?')
    page.click("#confirm-dialog [data-confirm]")
    expect(page.locator("[data-settings-status]")).to_contain_text("stop it first")
    page.click("[data-action=stop]")
    expect(page.locator("[data-daemon-badge]")).to_have_text("STOPPED", timeout=LIVE)
    page.click("[data-daemon-delete]")
    page.click("#confirm-dialog [data-confirm]")
    expect(page).to_have_url(re.compile(r"/daemons$"))
    expect(card(watcher, test_daemon)).to_have_count(0, timeout=LIVE)
    expect(card(watcher, made_watcher)).to_have_count(1)
    assert not [d for d in _all(app) if d["name"] == "Browser test daemon"]
    watcher.close()


def test_a_taken_name_is_shown_next_to_the_name_field(page, app, cleanup):
    with app.app_context():
        taken = daemon_queries.list_daemons()[0]["name"]
    new_daemon_form(page, "TEST_DAEMON")
    page.fill("input[name=name]", taken)
    page.uncheck("input[name=start]")
    page.click("[data-create]")
    expect(page.locator("#daemon-name-error")).to_contain_text("already exists")


def test_the_config_editor_refuses_an_out_of_bounds_value_before_sending(page, app, make_daemon):
    daemon = make_daemon(name="bounds")
    sent: list[str] = []
    page.on("request", lambda request: request.method == "PUT" and sent.append(request.url))
    page.goto(f"/daemons/{daemon.id}#config")
    editor = page.locator("[data-config-editor]")
    expect(page.locator("input[name=heartbeat_interval]")).to_be_visible()
    editor.fill('{"heartbeat_interval": -1}')
    page.click("[data-config-save]")
    expect(page.locator("[data-config-status]")).to_contain_text(
        '"heartbeat_interval" must be at least 0.1'
    )
    expect(page.locator("#config-heartbeat_interval-error")).to_be_visible()
    assert sent == []
