"""Every page says so when no worker serves the daemons queue (and when all is well, not)."""

from playwright.sync_api import expect

from stashhog.services.health import INSPECTION_MAX_AGE, INSPECTION_TIMEOUT
from tests.support.isolation import only_worker_on_queue

# The page polls every 10 s, and the web process reuses its worker inspection for a few
# seconds, so a change shows within one poll plus one inspection's age.
SHOWN_WITHIN_MS = int((10 + INSPECTION_MAX_AGE + INSPECTION_TIMEOUT + 2) * 1000)


def test_a_missing_daemons_worker_is_shown_on_the_page(page, celery_app, daemons_worker,
                                                       jobs_worker):  # fmt: skip
    page.goto("/daemons")
    expect(page.locator("#live-pill")).to_have_attribute("data-state", "live")
    expect(page.locator("#health-banner")).to_be_hidden()

    class Nobody:  # every worker, this one included, stops consuming "daemons"
        def hostname(self) -> str:
            return "nobody@nowhere"

    with only_worker_on_queue(celery_app, "daemons", Nobody()):
        page.reload()
        banner = page.locator("#health-banner")
        expect(banner).to_be_visible(timeout=SHOWN_WITHIN_MS)
        expect(banner).to_contain_text("no worker consumes the daemons queue")
    page.reload()
    expect(page.locator("#health-banner")).to_be_hidden(timeout=SHOWN_WITHIN_MS)
