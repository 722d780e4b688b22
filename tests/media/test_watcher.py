"""The METADATA_GENERATE_WATCHER on real daemons and jobs workers, over a library of generated
media: every good file gets every output, broken ones fail alone, and the library follows
new, renamed and deleted files within seconds."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from stashhog.extensions import db
from stashhog.media.models import MediaFile
from stashhog.media.thumbnails import thumbnail_path
from stashhog.models import DaemonJobHistory, DaemonLog, Job
from stashhog.services.daemon_control import start_daemon, stop_daemon
from tests.media.clips import make_audio_only, make_clip, make_image, make_not_media, make_truncated
from tests.media.support import row_versions, rows
from tests.support.wait import eventually

pytestmark = pytest.mark.usefixtures("media_db", "daemons_worker", "jobs_worker")
GOOD = ("a.mp4", "a-copy.mp4", "sub/b.mkv", "still.png", "photo.jpg")
BROKEN = ("cut.mp4", "sound-only.mp4", "fake.mkv")


def fill(library: Path) -> None:
    make_clip(library / "a.mp4", seed=1)
    make_clip(library / "a-copy.mp4", seed=1, noise=3)
    make_clip(library / "sub" / "b.mkv", seed=2)
    make_image(library / "still.png", seed=5)
    make_image(library / "photo.jpg", seed=6)
    make_truncated(library / "cut.mp4")
    make_audio_only(library / "sound-only.mp4")
    make_not_media(library / "fake.mkv")


def watcher_config(*roots, **overrides) -> dict:
    config = {"roots": [str(r) for r in roots], "heartbeat_interval": 0.5, "scan_interval": 3600}
    config.update(overrides)
    return config


def settled(expected: int):
    """Rows, once ``expected`` files are indexed and none is pending or claimed."""

    def probe():
        found = rows()
        done = all(r.status in ("ready", "failed", "missing") and r.job_id is None
                   for r in found.values())  # fmt: skip
        return found if len(found) == expected and done else None

    return probe


def log_messages(daemon_id) -> list[str]:
    db.session.expire_all()
    query = select(DaemonLog.message).where(DaemonLog.daemon_id == daemon_id)
    messages = list(db.session.scalars(query.order_by(DaemonLog.id)))
    db.session.commit()
    return messages


def status_line(daemon_id) -> str:
    from stashhog.models import Daemon

    db.session.expire_all()
    line = db.session.get(Daemon, daemon_id).status_line or ""
    db.session.commit()
    return line


def test_every_good_file_gets_every_output_and_broken_ones_fail_alone(
    make_daemon, library, tmp_path, app
):
    fill(library)
    nowhere = tmp_path / "nowhere"
    config = watcher_config(library, nowhere, batch_size=3, max_concurrent_jobs=2)
    daemon = make_daemon(type="METADATA_GENERATE_WATCHER", configuration=config)
    start_daemon(daemon.id, wait=3)
    try:
        found = eventually(settled(len(GOOD) + len(BROKEN)), timeout=40, interval=0.2)
        # The last batch's files are settled a moment before the monitor sees its job end.
        line = eventually(lambda: "0 pending, 0 jobs running" in status_line(daemon.id)
                          and status_line(daemon.id))  # fmt: skip
    finally:
        stop_daemon(daemon.id, wait=5)
    for name in GOOD:
        row = found[str(library / name)]
        assert (row.status, row.error, row.outputs) == ("ready", None, 15), name
        assert row.width and row.height and row.container and row.phash and row.checksum
        assert row.has_thumbnail and thumbnail_path(app.config["THUMBNAIL_DIR"], row.id).is_file()
        if name.endswith(("mp4", "mkv")):
            assert row.duration > 0 and row.frame_rate == 10 and row.video_codec == "mpeg4"
    for name in BROKEN:
        row = found[str(library / name)]
        assert row.status == "failed" and row.error and not row.has_thumbnail, name
        assert row.checksum  # what could be made was kept
    assert found[str(library / "sound-only.mp4")].audio_codec == "aac"
    assert not [p for p in library.rglob("*.jpg") if p.name != "photo.jpg"], "no media-side files"
    assert line.startswith("watching 1 root, 8 files, 0 pending, 0 jobs running, 3 failed")
    assert line.endswith("1 root unavailable")
    errors = [m for m in log_messages(daemon.id) if f"root {nowhere} is unavailable" in m]
    assert errors == [f"root {nowhere} is unavailable (does not exist); watching the others"]
    assert_batches(daemon.id, files=len(GOOD) + len(BROKEN), batch_size=3, concurrent=2)


def assert_batches(daemon_id, files: int, batch_size: int, concurrent: int) -> None:
    """Jobs of at most ``batch_size`` files, each file in one job, at most ``concurrent``
    running at once, each with LAUNCHED and FINISHED in the daemon's history."""
    db.session.expire_all()
    jobs = list(db.session.scalars(select(Job).where(Job.daemon_id == daemon_id)))
    batches = [job.job_metadata["file_ids"] for job in jobs]
    assert all(0 < len(batch) <= batch_size for batch in batches)
    assert sum(len(b) for b in batches) == len({i for b in batches for i in b}) == files
    assert {job.status for job in jobs} == {"completed"}
    spans = [(job.started_at, job.completed_at) for job in jobs]
    for start, _ in spans:
        assert sum(s <= start < e for s, e in spans) <= concurrent
    history = db.session.scalars(
        select(DaemonJobHistory).where(DaemonJobHistory.daemon_id == daemon_id)
    )
    actions = sorted((str(h.job_id), h.action) for h in history)
    assert actions == sorted([(str(j.id), "LAUNCHED") for j in jobs]
                             + [(str(j.id), "FINISHED") for j in jobs])  # fmt: skip
    db.session.commit()


def test_new_renamed_and_deleted_files_are_followed_within_seconds(make_daemon, library):
    make_clip(library / "first.mp4", seed=1)
    daemon = make_daemon(type="METADATA_GENERATE_WATCHER", configuration=watcher_config(library))
    start_daemon(daemon.id, wait=3)
    try:
        eventually(settled(1), timeout=20, interval=0.1)
        written = time.monotonic()
        make_clip(library / "new.mp4", seed=2)
        found = eventually(settled(2), timeout=10, interval=0.1)
        picked_up = time.monotonic() - written
        new = found[str(library / "new.mp4")]
        assert new.status == "ready" and new.phash

        os.rename(library / "new.mp4", library / "renamed.mp4")
        moved = eventually(lambda: rows().get(str(library / "renamed.mp4")), timeout=5)
        assert (moved.id, moved.status, moved.phash, moved.generated_at) == (
            new.id, "ready", new.phash, new.generated_at
        )  # fmt: skip
        assert str(library / "new.mp4") not in rows()

        (library / "first.mp4").unlink()
        gone = eventually(lambda: rows()[str(library / "first.mp4")].status == "missing", 5)
        assert gone
    finally:
        stop_daemon(daemon.id, wait=5)
    assert picked_up < 5, f"a new file took {picked_up:.1f} s to get its metadata"
    db.session.expire_all()
    jobs = db.session.scalars(select(Job).where(Job.daemon_id == daemon.id)).all()
    assert len(jobs) == 2, "the rename needed no new job"


def test_an_unchanged_library_rescans_without_writing(make_daemon, library):
    make_clip(library / "a.mp4", seed=1)
    make_image(library / "b.png")
    config = watcher_config(library, scan_interval=1)
    daemon = make_daemon(type="METADATA_GENERATE_WATCHER", configuration=config)
    start_daemon(daemon.id, wait=3)
    try:
        eventually(settled(2), timeout=20, interval=0.1)
        before = row_versions()
        rescans = len([m for m in log_messages(daemon.id) if m.startswith("rescan: no changes")])
        eventually(
            lambda: (
                len([m for m in log_messages(daemon.id) if m.startswith("rescan: no changes")])
                >= rescans + 3
            ),
            timeout=10,
            interval=0.2,
        )
        after = row_versions()
    finally:
        stop_daemon(daemon.id, wait=5)
    assert after == before


def test_a_cancelled_job_stops_between_files_and_the_next_resumes(media_db, library, app):
    from stashhog.media.scanner import scan_root
    from stashhog.services import job_service

    for index in range(30):
        make_clip(library / f"clip-{index:02}.mp4", seed=index + 1, frames=30)
    scan_root(str(library), frozenset({"mp4"}))
    ids = [str(i) for i in db.session.scalars(select(MediaFile.id).order_by(MediaFile.path))]
    db.session.commit()
    first = job_service.create_job("METADATA_GENERATE", {"file_ids": ids})
    eventually(lambda: (job_service.get_job(first.id).progress or 0) >= 10, timeout=20)
    job_service.cancel_job(first.id, "test")
    eventually(lambda: job_service.get_job(first.id).status == "cancelled", timeout=10)
    done = [r for r in rows().values() if r.status == "ready"]
    assert 0 < len(done) < 30
    assert all(r.job_id is None for r in rows().values()), "the cancelled job released its files"
    second = job_service.create_job("METADATA_GENERATE", {"file_ids": ids})
    eventually(lambda: job_service.get_job(second.id).status == "completed", timeout=30)
    result = job_service.get_job(second.id).result
    assert (result["skipped"], result["ready"]) == (len(done), 30 - len(done))
    assert {r.status for r in rows().values()} == {"ready"}
    assert uuid.UUID(ids[0])


def test_a_batch_past_job_timeout_is_cancelled_and_its_files_go_to_later_batches(
    make_daemon, library
):
    from stashhog.services import job_service

    for index in range(20):
        make_clip(library / f"clip-{index:03}.mp4", seed=index + 1)
    # Both slots of the jobs worker busy for 3 s: the watcher's first batch is stuck in the
    # queue, as behind a slow job, for longer than its job_timeout.
    blockers = [job_service.create_job("TEST", {"steps": 1, "step_seconds": 3}) for _ in "ab"]
    config = watcher_config(library, batch_size=10, max_concurrent_jobs=1, job_timeout=1)
    daemon = make_daemon(type="METADATA_GENERATE_WATCHER", configuration=config)
    start_daemon(daemon.id, wait=3)
    try:
        found = eventually(settled(20), timeout=30, interval=0.2)
        # A job it cancelled may still be ending (the jobs worker stops between files):
        # its terminal record comes when the monitor sees it end.
        eventually(lambda: "0 jobs running" in status_line(daemon.id), timeout=15)
    finally:
        stop_daemon(daemon.id, wait=5)
    assert {row.status for row in found.values()} == {"ready"}
    assert {job_service.get_job(job.id).status for job in blockers} == {"completed"}
    db.session.expire_all()
    history = db.session.scalars(
        select(DaemonJobHistory).where(
            DaemonJobHistory.daemon_id == daemon.id,
            DaemonJobHistory.action.in_(("CANCELLED", "FINISHED", "FAILED")),
        )
    ).all()
    db.session.commit()
    cancelled = [h for h in history if h.action == "CANCELLED"]
    assert cancelled and all("job_timeout (1 s)" in h.reason for h in cancelled)
    # Each job it cancelled has exactly one terminal record: CANCELLED, or FINISHED when
    # the job completed just before the cancel reached it.
    warned = [m.split()[2].rstrip(":") for m in log_messages(daemon.id)
              if m.startswith("cancelling job")]  # fmt: skip
    ends = [str(h.job_id) for h in history]
    assert all(ends.count(job_id) == 1 for job_id in warned), (warned, ends)
    assert {str(h.job_id) for h in cancelled} <= set(warned)
