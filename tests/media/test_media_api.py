"""``/api/media``: listing with filters and keyset paging, one file, its thumbnail (served
from the cache by id only), and duplicate groups."""

from __future__ import annotations

import io
import uuid

import pytest
from PIL import Image

from stashhog.media.thumbnails import thumbnail_path
from tests.media.clips import make_clip, make_image, make_not_media, make_truncated
from tests.media.support import index_and_generate

pytestmark = pytest.mark.usefixtures("media_db")


@pytest.fixture
def files(library):
    make_clip(library / "a.mp4", seed=1)
    make_clip(library / "a-copy.mp4", seed=1, noise=3)
    make_clip(library / "B_100%.mkv", seed=2)
    make_image(library / "still.png", seed=5)
    make_truncated(library / "cut.mp4")
    make_not_media(library / "fake.mkv")
    return index_and_generate(library)


def test_list_is_in_path_order_with_counts(client, files):
    body = client.get("/api/media").get_json()
    assert [f["path"] for f in body["files"]] == sorted(files)
    assert body["counts"] == {"ready": 4, "pending": 0, "failed": 2, "missing": 0}
    assert body["next_after"] is None
    first = body["files"][0]
    assert first["name"] == "B_100%.mkv" and first["kind"] == "video"


def test_filters_by_status_and_by_path_in_any_case(client, files):
    failed = client.get("/api/media?status=failed").get_json()["files"]
    assert sorted(f["name"] for f in failed) == ["cut.mp4", "fake.mkv"]
    assert all(f["error"] and f["thumbnail_url"] is None for f in failed)
    found = client.get("/api/media?q=COPY").get_json()["files"]
    assert [f["name"] for f in found] == ["a-copy.mp4"]
    # % and _ are matched as themselves, not as LIKE wildcards.
    assert [f["name"] for f in client.get("/api/media?q=_100%25").get_json()["files"]] == [
        "B_100%.mkv"
    ]
    assert client.get("/api/media?q=a_c").get_json()["files"] == []


def test_keyset_pages_cover_every_file_once(client, files):
    seen, after = [], None
    while True:
        params = {"limit": 2, **({"after": after} if after else {})}
        body = client.get("/api/media", query_string=params).get_json()
        seen += [f["path"] for f in body["files"]]
        after = body["next_after"]
        if after is None:
            break
        assert len(body["files"]) == 2
    assert seen == sorted(files)


def test_bad_parameters_are_a_400_naming_them(client, files):
    for url, parameter in [
        ("/api/media?status=lost", "status"),
        ("/api/media?limit=0", "limit"),
        ("/api/media?q=%00", "q"),
        ("/api/media?bogus=1", "bogus"),
        ("/api/media/duplicates?max_distance=33", "max_distance"),
    ]:
        response = client.get(url)
        assert response.status_code == 400, url
        assert response.get_json()["error"]["parameter"] == parameter, url


def test_one_file_has_all_its_metadata(client, files, library):
    row = files[str(library / "a.mp4")]
    body = client.get(f"/api/media/{row.id}").get_json()
    assert body["status"] == "ready"
    assert body["outputs"] == ["probe", "thumbnail", "phash", "checksum"]
    assert (body["width"], body["height"], body["frame_rate"]) == (64, 48, 10.0)
    assert body["container"] == "mp4" and body["video_codec"] == "mpeg4"
    assert body["checksum"] == row.checksum and body["phash"] == row.phash
    assert body["thumbnail_url"].startswith(f"/api/media/{row.id}/thumbnail?v=")
    assert client.get(f"/api/media/{uuid.uuid4()}").status_code == 404


def test_thumbnail_is_a_jpeg_from_the_cache_by_id(client, files, library, app):
    row = files[str(library / "still.png")]
    response = client.get(f"/api/media/{row.id}/thumbnail")
    assert response.status_code == 200 and response.mimetype == "image/jpeg"
    assert Image.open(io.BytesIO(response.data)).size == (80, 64)
    assert "max-age" in response.headers["Cache-Control"]
    cached = thumbnail_path(app.config["THUMBNAIL_DIR"], row.id)
    assert cached.is_file() and library not in cached.parents
    failed = files[str(library / "cut.mp4")]
    missing = client.get(f"/api/media/{failed.id}/thumbnail")
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "not_found"
    for attempt in ("/api/media/..%2F..%2Fetc%2Fpasswd/thumbnail", "/api/media/x/thumbnail"):
        assert client.get(attempt).status_code == 404
    cached.unlink()
    assert client.get(f"/api/media/{row.id}/thumbnail").status_code == 404


def test_near_identical_clips_come_out_as_duplicates(client, files, library):
    body = client.get("/api/media/duplicates?max_distance=4").get_json()
    assert body["max_distance"] == 4
    assert [sorted(f["name"] for f in g["files"]) for g in body["groups"]] == [
        ["a-copy.mp4", "a.mp4"]
    ]
    assert body["groups"][0]["distance"] <= 4
    wide = client.get("/api/media/duplicates?max_distance=32").get_json()["groups"]
    assert len(wide) == 1 and len(wide[0]["files"]) > 2  # at 32 bits unrelated files link
