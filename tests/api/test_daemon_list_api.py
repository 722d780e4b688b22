"""``GET /api/daemons`` as 1,000 daemons need it: pages (``limit``/``offset``), the list's
shape (the same daemons as ``present`` shows one), its ETag, and how fresh a reused list is."""

from __future__ import annotations

import time

import pytest

from stashhog.api.responses import DaemonList
from stashhog.services import daemon_queries
from stashhog.services.daemon_listing import BUSY_RATE, RECENT_MAX_AGE
from stashhog.services.daemon_state import change_daemon
from tests.api.conftest import error_of

FRESH = {"Cache-Control": "no-cache"}


@pytest.fixture(autouse=True)
def quiet_afterwards(app):
    """The next test (another module's too) must not find the list busy from this one's."""
    yield
    listing = app.extensions.get("daemon_listing")
    if listing is not None:
        listing.asked.clear()
        listing.forget_recent()


@pytest.fixture
def five(make_daemon):
    return [make_daemon(name=f"page-{n}", configuration={"log_interval": 2.0}) for n in range(5)]


def names(response) -> list[str]:
    return [daemon["name"] for daemon in response.get_json()["daemons"]]


def test_pages_by_name_with_the_total(client, five):
    everything = client.get("/api/daemons", headers=FRESH).get_json()
    assert everything["total"] == len(everything["daemons"]) == 6  # and the seed daemon
    assert (everything["limit"], everything["offset"]) == (None, 0)
    ordered = [daemon["name"] for daemon in everything["daemons"]]
    assert ordered == sorted(ordered)
    page = client.get("/api/daemons?limit=2&offset=1", headers=FRESH)
    assert page.status_code == 200
    body = DaemonList.model_validate(page.get_json())
    assert (body.total, body.limit, body.offset) == (6, 2, 1)
    assert names(page) == ordered[1:3]
    assert names(client.get("/api/daemons?limit=10&offset=4")) == ordered[4:]
    assert names(client.get("/api/daemons?offset=6")) == []


@pytest.mark.parametrize("query", ["limit=0", "limit=1001", "offset=-1", "limit=x", "page=2"])
def test_a_bad_page_is_400(client, clean_db, query):
    error_of(client.get(f"/api/daemons?{query}"), 400)


def test_the_list_shows_each_daemon_as_one_daemon_shows(client, five, app_ctx):
    """The listing's pieces (kept encoded per row) give what ``present`` gives, field by
    field, after a change too."""
    change_daemon(five[2].id, status_line="changed once", restart_count=3)
    listed = client.get("/api/daemons", headers=FRESH).get_json()["daemons"]
    expected = daemon_queries.list_daemons()
    for shown, daemon in zip(listed, expected, strict=True):
        assert shown.keys() == daemon.keys()
        assert {**shown, "uptime_seconds": None} == {**daemon, "uptime_seconds": None}
    assert next(d for d in listed if d["id"] == str(five[2].id))["restart_count"] == 3


def status_line(client, name: str, **headers) -> str:
    shown = client.get("/api/daemons", headers=headers).get_json()["daemons"]
    return next(d for d in shown if d["name"] == name)["status_line"]


def poll_busily(client) -> None:
    """More than BUSY_RATE requests within a second: from here on a list is reused."""
    for _ in range(BUSY_RATE):
        client.get("/api/daemons")


def test_a_client_asking_now_and_then_always_gets_a_fresh_list(client, five):
    client.get("/api/daemons")
    change_daemon(five[0].id, status_line="written by a worker")
    assert status_line(client, "page-0") == "written by a worker"


def test_a_busily_polled_list_is_reused_for_at_most_recent_max_age(client, five):
    poll_busily(client)
    change_daemon(five[0].id, status_line="seen soon")
    assert status_line(client, "page-0") is None  # the list built a moment ago
    assert status_line(client, "page-0", **FRESH) == "seen soon"
    change_daemon(five[0].id, status_line="seen later")
    time.sleep(RECENT_MAX_AGE)
    assert status_line(client, "page-0") == "seen later"


def test_a_write_through_the_api_or_a_new_daemon_shows_at_once_however_busy(
    client, five, make_daemon
):
    poll_busily(client)
    assert client.put(f"/api/daemons/{five[1].id}", json={"name": "page-1b"}).status_code == 200
    assert "page-1b" in names(client.get("/api/daemons"))
    make_daemon(name="page-new")  # behind the API's back
    assert "page-new" in names(client.get("/api/daemons"))


def test_an_unchanged_list_is_a_304_with_if_none_match(client, five):
    first = client.get("/api/daemons", headers=FRESH)
    etag = first.headers["ETag"]
    assert etag.startswith('W/"')
    again = client.get("/api/daemons", headers={**FRESH, "If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    change_daemon(five[0].id, status_line="new")
    changed = client.get("/api/daemons", headers={**FRESH, "If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
