"""What a new user does after ``make run``: a watcher over a folder of videos on the embedded
SQLite default, with real workers, fills the library that the API serves."""

from __future__ import annotations

from stashhog.auth.roles import Role
from stashhog.extensions import db
from stashhog.models import Daemon
from stashhog.services.daemon_control import start_daemon, stop_daemon
from tests.media.clips import make_clip, make_image, make_truncated
from tests.media.support import forget_media, rows
from tests.support.access import tokens_per_role, with_token
from tests.support.wait import eventually
from tests.test_embedded_sqlite import sqlite_cluster  # noqa: F401  (the fixture)


def all_done(expected: int):
    def probe() -> bool:
        found = rows()
        finished = all(r.status in ("ready", "failed") and r.job_id is None for r in found.values())
        return len(found) == expected and finished

    return probe


def test_a_watcher_fills_the_library_on_sqlite(sqlite_cluster, tmp_path):  # noqa: F811
    app, library = sqlite_cluster, tmp_path / "videos"
    for index in range(4):
        make_clip(library / f"clip-{index}.mp4", seed=index + 1)
    make_image(library / "poster.jpg")
    make_truncated(library / "broken.mp4")
    config = {"roots": [str(library)], "heartbeat_interval": 0.5}
    watcher = Daemon(name="Library", type="METADATA_GENERATE_WATCHER", configuration=config)
    db.session.add(watcher)
    db.session.commit()
    try:
        start_daemon(watcher.id, wait=5)
        eventually(all_done(6), timeout=40, interval=0.2)
        make_clip(library / "later.mp4", seed=9)
        eventually(all_done(7), timeout=15, interval=0.2)
        stop_daemon(watcher.id, wait=5)
        client = with_token(app.test_client(), tokens_per_role(app)[Role.VIEWER])
        listing = client.get("/api/media").get_json()
        assert listing["counts"] == {"ready": 6, "pending": 0, "failed": 1, "missing": 0}
        videos = [f for f in listing["files"] if f["status"] == "ready" and f["kind"] == "video"]
        assert len(videos) == 5
        assert all(f["thumbnail_url"] and f["phash"] and f["duration"] for f in videos)
        cover = client.get(videos[0]["thumbnail_url"])
        assert cover.status_code == 200 and cover.mimetype == "image/jpeg"
    finally:
        forget_media(app)
