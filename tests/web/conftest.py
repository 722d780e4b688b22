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

from stashhog.services import daemon_configuration, daemon_control, daemon_queries
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


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(
        base_url=live_server.url,
        viewport={"width": 1360, "height": 900},
        color_scheme="dark",
        accept_downloads=True,
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


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
