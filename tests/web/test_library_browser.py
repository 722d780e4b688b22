"""The Library pages in a real Chromium: the thumbnail grid and the table, filter and search,
a file's page, duplicate groups, live updates while a job runs, and file names shown as text."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from stashhog.extensions import db
from stashhog.media.library_files import DEFAULT_EXTENSIONS
from stashhog.media.models import MediaFile
from stashhog.media.scanner import scan_root
from stashhog.services import job_service
from tests.media.clips import make_clip, make_image, make_truncated
from tests.media.support import index_and_generate
from tests.web.panel import shot

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("media_db")]
LIVE = 15_000
TRICKY = "<img src=x onerror=window.pwned=1>.png"


@pytest.fixture
def files(library):
    make_clip(library / "a.mp4", seed=1)
    make_clip(library / "a-copy.mp4", seed=1, noise=3)
    make_clip(library / "sub" / "b.mkv", seed=2)
    make_image(library / TRICKY, seed=5)
    make_truncated(library / "cut.mp4")
    return index_and_generate(library)


def cards(page):
    return page.locator("[data-media-grid] .media-card")


def test_grid_table_filter_and_search(page, files):
    page.goto("/library")
    expect(cards(page)).to_have_count(5)
    expect(page.locator("[data-library-counts]")).to_contain_text("5 files")
    expect(page.locator('[data-count="failed"]')).to_have_text("1 failed")
    # Covers load after the cards appear: wait until every image has finished loading (a
    # broken one finishes too, with no width, and fails the check below).
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-media-grid] img')].every(i => i.complete)"
    )
    loaded = page.eval_on_selector_all(
        "[data-media-grid] img", "imgs => imgs.map(i => i.complete && i.naturalWidth > 0)"
    )
    assert loaded == [True] * 4, "the four good files show their covers"
    expect(page.locator('.media-card[data-status="failed"] .placeholder')).to_have_count(1)
    name = page.locator("[data-media-grid] .media-name", has_text="onerror")
    expect(name).to_have_text(TRICKY)  # a name is text, never markup
    assert page.evaluate("window.pwned") is None
    shot(page, "library-grid")

    page.select_option("[data-filter-status]", "failed")
    expect(cards(page)).to_have_count(1)
    expect(cards(page).first).to_contain_text("cut.mp4")
    page.select_option("[data-filter-status]", "")
    page.fill("[data-filter-q]", "COPY")
    expect(cards(page)).to_have_count(1)
    expect(cards(page).first).to_contain_text("a-copy.mp4")
    assert "q=COPY" in page.url

    page.fill("[data-filter-q]", "b.mkv")
    page.click('[data-view="table"]')
    row = page.locator("[data-media-rows] tr")
    expect(row).to_have_count(1)
    expect(row.first).to_contain_text("0:01")
    expect(row.first).to_contain_text("64×48")
    expect(row.first).to_contain_text("mpeg4")
    expect(page.locator("[data-media-grid]")).to_be_hidden()


def test_a_files_page_shows_its_metadata(page, files, library):
    page.goto("/library")
    page.locator(".media-card", has_text="a.mp4").first.click()
    row = files[str(library / "a.mp4")]
    expect(page).to_have_url(f"{page.url.split('/library')[0]}/library/{row.id}")
    facts = page.locator("[data-media-facts]")
    expect(facts).to_contain_text(row.checksum)
    expect(facts).to_contain_text(row.phash)
    expect(facts).to_contain_text("64×48")
    expect(facts).to_contain_text("10 fps")
    expect(page.locator("[data-media-badge]")).to_have_text("ready")
    # The cover loads after the facts render: wait until it has finished (a broken one
    # finishes too, with no width, and fails the check).
    page.wait_for_function("() => document.querySelector('[data-media-cover] img')?.complete")
    assert page.eval_on_selector("[data-media-cover] img", "i => i.naturalWidth") == 64
    failed = files[str(library / "cut.mp4")]
    page.goto(f"/library/{failed.id}")
    expect(page.locator("[data-media-error]")).to_contain_text("open:")
    assert page.goto("/library/00000000-0000-0000-0000-000000000000").status == 404


def test_duplicate_groups(page, files):
    page.goto("/library/duplicates")
    groups = page.locator(".duplicate-group")
    expect(groups).to_have_count(1)
    expect(groups.first.locator(".media-card")).to_have_count(2)
    expect(groups.first).to_contain_text("a-copy.mp4")
    shot(page, "library-duplicates")
    page.fill("[data-max-distance]", "32")
    page.dispatch_event("[data-max-distance]", "change")
    expect(groups.first.locator(".media-card")).to_have_count(4)


@pytest.mark.usefixtures("jobs_worker")
def test_the_grid_follows_a_running_job_live(page, files, library):
    page.goto("/library")
    expect(cards(page)).to_have_count(5)
    make_clip(library / "z-new.mp4", seed=8)
    scan_root(str(library), frozenset(DEFAULT_EXTENSIONS))
    new_id = db.session.scalar(select(MediaFile.id).where(MediaFile.path.endswith("z-new.mp4")))
    db.session.commit()
    job_service.create_job("METADATA_GENERATE", {"file_ids": [str(new_id)]})
    card = page.locator(f'.media-card[data-file-id="{new_id}"]')
    expect(card).to_have_attribute("data-status", "ready", timeout=LIVE)
    expect(card.locator("img")).to_be_visible()
    expect(page.locator("[data-library-counts]")).to_contain_text("6 files")


def test_the_watchers_page_links_to_the_library(client, make_daemon):
    watcher = make_daemon(type="METADATA_GENERATE_WATCHER", configuration={})
    page = client.get(f"/daemons/{watcher.id}").get_data(as_text=True)
    assert 'href="/library" data-library-link' in page
    other = make_daemon(configuration={})
    assert "data-library-link" not in client.get(f"/daemons/{other.id}").get_data(as_text=True)
    assert 'href="/library"' in client.get("/jobs").get_data(as_text=True)  # the nav link
