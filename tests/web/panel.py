"""What the browser tests read from and do to the control panel pages."""

from __future__ import annotations

from playwright.sync_api import expect

from stashhog.services import daemon_queries
from tests.web.conftest import ARTIFACTS

LIVE = 15_000  # ms: how long a live change may take to reach the page (workers included)


def card(page, daemon):
    return page.locator(f'article[data-daemon-id="{daemon["id"]}"]')


def shown_ids(page) -> list[int]:
    return page.eval_on_selector_all(".log-line", "nodes => nodes.map(n => Number(n.dataset.id))")


def server_ids(app, daemon, after_id: int, before_id: int) -> list[int]:
    with app.app_context():
        lines = daemon_queries.get_logs(
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
