"""``/api/docs`` in a real Chromium: Swagger UI, from the panel's own files and under the
panel's CSP, sends requests from "Try it out" with the session cookie (and, for a change, the
CSRF token the API requires), with no console error and no CSP violation."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

from stashhog.services import daemon_queries
from tests.web.panel import shot

pytestmark = pytest.mark.browser


def try_it(page, operation: str, body: dict | None = None):
    """Expand an operation ("tag-operationId"), Try it out, Execute (with ``body``, if given);
    its response block."""
    block = page.locator(f"#operations-{operation}")
    block.locator(".opblock-summary").click()
    block.locator("button.try-out__btn").click()
    if body is not None:
        block.locator("textarea.body-param__text").fill(json.dumps(body))
    block.locator("button.execute").click()
    return block.locator(".live-responses-table .response").first


def test_try_it_out_reads_and_changes_with_the_session(page, app, daemons_worker, jobs_worker):
    """(With workers: the shell's health poll must not log a 503 as a console error.)"""
    console_errors, violations = [], []
    page.on("console", lambda msg: console_errors.append(msg.text) if msg.type == "error" else None)
    page.add_init_script(
        "document.addEventListener('securitypolicyviolation',"
        " (e) => (window.__violations = window.__violations || []).push(e.violatedDirective))"
    )
    with app.app_context():
        seeded = daemon_queries.get_daemon("Test Daemon")

    page.goto("/api/docs")
    expect(page.locator("#operations-daemons-list_daemons")).to_be_visible()
    expect(page.locator("#live-pill")).to_have_attribute("data-state", "live")  # the shell runs
    response = try_it(page, "daemons-list_daemons")
    expect(response.locator(".response-col_status")).to_have_text("200")
    body = json.loads(response.locator(".response-col_description pre").first.inner_text())
    assert seeded["id"] in [daemon["id"] for daemon in body["daemons"]]
    shot(page, "api-docs-try-it-out")

    # A change carried by the cookie needs the CSRF token: the interceptor adds it.
    response = try_it(page, "jobs-create_job", {"type": "TEST", "metadata": {"steps": 1}})
    expect(response.locator(".response-col_status")).to_have_text("201")
    job = json.loads(response.locator(".response-col_description pre").first.inner_text())
    assert job["type"] == "TEST" and job["metadata"]["steps"] == 1, job

    violations += page.evaluate("window.__violations || []")
    assert violations == [] and console_errors == [], (violations, console_errors)
