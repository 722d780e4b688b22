"""The panel under ``URL_PREFIX=/daemons-panel`` in a real Chromium, as behind a reverse proxy
that forwards the prefix as it is: sign in, the daemons page with its styles and scripts, the
live socket, start and stop through the API, a daemon's page, sign out, all under the prefix;
every request the browser makes stays under it and succeeds, and the unprefixed paths are not
served."""

from __future__ import annotations

import logging
import re

import pytest
from playwright.sync_api import expect

from tests.support.access import TEST_PASSWORD, username_for
from tests.support.prefixed import prefixed_app
from tests.web.conftest import LiveServer, watch_for_errors
from tests.web.panel import LIVE, card, shot

pytestmark = pytest.mark.browser
PREFIX = "/daemons-panel"


@pytest.fixture(scope="module")
def prefixed_server(app, database_url, redis_url, redis_prefix):
    """The session's database, Redis and workers, served under the prefix by a server of its
    own (the session's live server serves the root)."""
    prefixed = prefixed_app(app, database_url, redis_url, redis_prefix, PREFIX)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = LiveServer(prefixed).start()
    yield server
    server.stop()


def test_the_panel_works_under_the_prefix(browser, prefixed_server, test_daemon):
    context = browser.new_context(
        base_url=prefixed_server.url, viewport={"width": 1360, "height": 900}
    )
    page = context.new_page()
    errors, responses, sockets = [], [], []
    watch_for_errors(page, errors)
    page.on("response", lambda reply: responses.append((reply.status, reply.url)))
    page.on("websocket", lambda socket: sockets.append(socket.url))
    try:
        # Signed out: the login page under the prefix, coming back to where we were.
        page.goto(f"{PREFIX}/daemons")
        expect(page).to_have_url(f"{PREFIX}/login?next={PREFIX}/daemons")
        page.fill("input[name=username]", username_for("operator"))
        page.fill("input[name=password]", TEST_PASSWORD)
        page.click("button[type=submit]")
        expect(page).to_have_url(f"{PREFIX}/daemons")
        expect(page.locator("#live-pill")).to_have_attribute("data-state", "live", timeout=LIVE)
        assert sockets == [
            f"ws://127.0.0.1:{prefixed_server.server.server_port}{PREFIX}/api/daemons/ws"
        ]
        # The stylesheet applied: the top bar is laid out as a flex row.
        assert page.eval_on_selector(".topbar", "node => getComputedStyle(node).display") == "flex"

        item = card(page, test_daemon)
        item.locator('[data-action="start"]').click()
        expect(item.locator(".badge")).to_have_text("RUNNING", timeout=LIVE)
        shot(page, "url-prefix-daemons")
        item.locator('[data-action="stop"]').click()
        expect(item.locator(".badge")).to_have_text("STOPPED", timeout=LIVE)

        item.locator("a.details").click()
        expect(page).to_have_url(f"{PREFIX}/daemons/{test_daemon['id']}")
        expect(page.locator("#live-pill")).to_have_attribute("data-state", "live", timeout=LIVE)
        expect(page.locator("h1")).to_contain_text(test_daemon["name"])

        page.click("[data-logout] button")
        expect(page).to_have_url(f"{PREFIX}/login")
    finally:
        context.close()
    assert not errors, errors
    origin = prefixed_server.url
    outside = [url for _status, url in responses if not url.startswith(f"{origin}{PREFIX}/")]
    assert outside == [], "requests outside the prefix"
    failed = [(status, url) for status, url in responses if status >= 400]
    assert failed == [], "failed requests"
    assert any(url.endswith(".css") for _status, url in responses)
    assert any("/api/daemons" in url for _status, url in responses)


def test_the_unprefixed_paths_are_not_served(browser, prefixed_server):
    context = browser.new_context(base_url=prefixed_server.url)
    try:
        page = context.new_page()
        for path in ("/daemons", "/login", "/static/css/app.css", "/api/openapi.json"):
            assert page.goto(path).status == 404, path
        page.goto("/")  # the bare root leads to the panel (its login page, signed out)
        expect(page).to_have_url(re.compile(rf"{PREFIX}/login\?next={PREFIX}/$"))
    finally:
        context.close()
