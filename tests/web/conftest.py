"""Fixtures for the control panel: the app served by a real threaded server on loopback,
a real Chromium driven by Playwright, and the seeded Test Daemon made fast for the browser
tests."""

from __future__ import annotations

import logging
import os
import shutil
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from stashhog.auth.roles import Role
from stashhog.services import daemon_configuration, daemon_control, daemon_queries
from tests.support.access import TEST_PASSWORD, ensure_user, username_for
from tests.support.services import IN_CI

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


class LiveServer:
    """The app under werkzeug's threaded server, in a thread of the test process."""

    def __init__(self, app) -> None:
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.ws_url = f"ws://127.0.0.1:{self.server.server_port}/api/daemons/ws"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> LiveServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(10)


@pytest.fixture(scope="session")
def live_server(app):
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request is noise
    server = LiveServer(app).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def relay(app):
    return app.extensions["relay"]


def chromium_path() -> str | None:
    return os.environ.get("CHROMIUM_PATH") or shutil.which("chromium")


@pytest.fixture(scope="session")
def browser():
    path = chromium_path()
    if not path:
        message = "chromium is not installed (set CHROMIUM_PATH or install chromium)"
        if IN_CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=path, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


def sign_in(browser, base_url: str, username: str) -> dict:
    """Sign in through the login form, as a user does; the context's cookies, to reuse."""
    context = browser.new_context(base_url=base_url)
    page = context.new_page()
    page.goto("/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", TEST_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/daemons")
    state = context.storage_state()
    context.close()
    return state


@pytest.fixture(scope="session")
def signed_in_states(app, browser, live_server) -> dict[Role, dict]:
    """One sign-in per role for the whole session (each page reuses its cookies)."""
    states = {}
    with app.app_context():
        for role in Role:
            ensure_user(username_for(role), role)
    for role in Role:
        states[role] = sign_in(browser, live_server.url, username_for(role))
    return states


def watch_for_errors(page, errors: list[str]) -> None:
    """Script errors and Content-Security-Policy violations, each a test failure."""
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on(
        "console",
        lambda msg: errors.append(msg.text) if "Content Security Policy" in msg.text else None,
    )


@pytest.fixture
def page_as(browser, live_server, signed_in_states):
    """``page_as(Role.VIEWER)``: a page signed in with that role; fails the test on script
    errors and on CSP violations."""
    contexts, errors = [], []

    def make(role: Role | str):
        context = browser.new_context(
            base_url=live_server.url,
            viewport={"width": 1360, "height": 900},
            color_scheme="dark",
            accept_downloads=True,
            storage_state=signed_in_states[Role(role)],
        )
        contexts.append(context)
        page = context.new_page()
        watch_for_errors(page, errors)
        return page

    yield make
    for context in contexts:
        context.close()
    assert not errors, f"JavaScript errors or CSP violations on the page: {errors}"


@pytest.fixture
def page(page_as):
    """A page signed in as an admin."""
    return page_as(Role.ADMIN)


FAST_CONFIG = {
    "log_interval": 0.2,
    "job_interval": 2,
    "heartbeat_interval": 1,
    "job_metadata": {"steps": 3, "step_seconds": 0.5},
}


@pytest.fixture(scope="module")
def test_daemon(app, daemons_worker, jobs_worker):
    """The seeded Test Daemon, stopped, with a fast configuration."""
    with app.app_context():
        daemon = daemon_queries.get_daemon("Test Daemon")
        daemon_control.stop_daemon(daemon["id"], wait=10)
        daemon_configuration.update_daemon(daemon["id"], configuration=FAST_CONFIG, enabled=True)
    yield daemon
    with app.app_context():
        daemon_control.stop_daemon(daemon["id"], wait=10)


@pytest.fixture
def running(app, test_daemon):
    with app.app_context():
        daemon_control.start_daemon(test_daemon["id"], wait=10)
    return test_daemon
