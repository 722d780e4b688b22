"""The library index on PostgreSQL: new, changed, moved, deleted and returning files, and an
unchanged rescan that writes nothing at all."""

from __future__ import annotations

import os

import pytest

from stashhog.extensions import db
from stashhog.media.checksum import oshash
from stashhog.media.library_files import DEFAULT_EXTENSIONS, RootUnavailable, normalise_root
from stashhog.media.models import MediaFile
from stashhog.media.scanner import scan_root
from tests.media.clips import make_clip, make_image, make_not_media
from tests.media.support import row_versions, rows
from tests.media.writes import counting_writes

pytestmark = pytest.mark.usefixtures("media_db")
EXTENSIONS = frozenset(DEFAULT_EXTENSIONS)


def scan(root, touched=None):
    return scan_root(normalise_root(str(root)), EXTENSIONS, touched)


def mark_generated(path) -> None:
    """What a finished job leaves: a checksum, results, status ready."""
    row = rows()[str(path)]
    row.checksum, row.status, row.outputs, row.width = oshash(path), "ready", 15, 64
    db.session.commit()


def fill(library):
    make_clip(library / "a.mp4", seed=1)
    make_clip(library / "sub" / "b.mkv", seed=2)
    make_image(library / "c.PNG")
    make_not_media(library / "fake.mp4")
    (library / "notes.txt").write_text("not a media extension")
    make_clip(library / ".hidden" / "d.mp4", seed=4)


def test_first_scan_indexes_media_files_as_pending(library):
    fill(library)
    result = scan(library)
    assert (result.added, result.files, result.changes) == (4, 4, 4)
    found = rows()
    assert set(found) == {str(library / n) for n in ("a.mp4", "sub/b.mkv", "c.PNG", "fake.mp4")}
    assert {row.status for row in found.values()} == {"pending"}
    assert found[str(library / "c.PNG")].kind == "image"
    assert found[str(library / "a.mp4")].kind == "video"
    assert found[str(library / "a.mp4")].size == os.path.getsize(library / "a.mp4")


def test_an_unchanged_rescan_writes_nothing(library, app):
    fill(library)
    scan(library)
    mark_generated(library / "a.mp4")
    before = row_versions()
    with counting_writes(db.engine) as writes:
        result = scan(library)
    assert result.changes == 0 and result.describe() == "no changes"
    assert writes == []
    assert row_versions() == before


def test_a_changed_file_is_pending_again_and_only_it_is_written(library):
    fill(library)
    scan(library)
    mark_generated(library / "a.mp4")
    before = row_versions()
    make_clip(library / "a.mp4", seed=9, frames=20)
    with counting_writes(db.engine) as writes:
        result = scan(library)
    assert (result.changed, result.changes) == (1, 1) and len(writes) == 1
    row = rows()[str(library / "a.mp4")]
    assert row.status == "pending" and row.size == os.path.getsize(library / "a.mp4")
    after = row_versions()
    assert after[str(library / "a.mp4")] != before[str(library / "a.mp4")]
    assert {p: v for p, v in after.items() if not p.endswith("a.mp4")} == {
        p: v for p, v in before.items() if not p.endswith("a.mp4")
    }


def test_a_deleted_file_is_marked_missing_and_comes_back_as_it_was(library):
    fill(library)
    scan(library)
    mark_generated(library / "a.mp4")
    saved = (library / "a.mp4").read_bytes()
    stat = os.stat(library / "a.mp4")
    (library / "a.mp4").unlink()
    assert scan(library).missing == 1
    row = rows()[str(library / "a.mp4")]
    assert row.status == "missing" and row.missing_since is not None and row.width == 64
    (library / "a.mp4").write_bytes(saved)
    os.utime(library / "a.mp4", ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert scan(library).returned == 1
    row = rows()[str(library / "a.mp4")]
    assert (row.status, row.missing_since, row.width) == ("ready", None, 64)


def test_a_moved_file_keeps_its_row_and_metadata(library, tmp_path):
    fill(library)
    scan(library)
    mark_generated(library / "a.mp4")
    file_id = rows()[str(library / "a.mp4")].id
    os.rename(library / "a.mp4", library / "sub" / "renamed.mp4")
    result = scan(library)
    assert (result.moved, result.missing, result.added) == (1, 0, 0)
    row = rows()[str(library / "sub" / "renamed.mp4")]
    assert (row.id, row.status, row.width) == (file_id, "ready", 64)
    assert str(library / "a.mp4") not in rows()


def test_a_file_moved_to_another_root_is_found_there(library, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    fill(library)
    scan(library)
    mark_generated(library / "a.mp4")
    file_id = rows()[str(library / "a.mp4")].id
    os.rename(library / "a.mp4", other / "a.mp4")
    assert scan(library).missing == 1  # the first root's scan sees it gone...
    assert scan(other).moved == 1  # ...the second finds it again, metadata and all
    row = db.session.get(MediaFile, file_id, populate_existing=True)
    assert (row.path, row.root, row.status) == (str(other / "a.mp4"), str(other), "ready")


def test_a_partial_scan_looks_only_at_the_touched_paths(library):
    fill(library)
    scan(library)
    (library / "a.mp4").unlink()
    make_clip(library / "new" / "e.mp4", seed=5)
    result = scan(library, touched={str(library / "new")})
    assert (result.added, result.missing) == (1, 0)  # a.mp4 was not touched: not looked at
    assert rows()[str(library / "a.mp4")].status == "pending"
    result = scan(library, touched={str(library / "a.mp4"), str(library / ".hidden/d.mp4")})
    assert (result.missing, result.added) == (1, 0)


def test_a_folder_deleted_at_once_marks_its_files_missing(library):
    fill(library)
    scan(library)
    (library / "sub" / "b.mkv").unlink()
    (library / "sub").rmdir()
    assert scan(library, touched={str(library / "sub")}).missing == 1
    assert rows()[str(library / "sub" / "b.mkv")].status == "missing"


def test_a_root_that_cannot_be_read_is_refused_by_name(tmp_path):
    with pytest.raises(RootUnavailable, match="does not exist") as missing:
        scan(tmp_path / "nowhere")
    assert missing.value.root == str(tmp_path / "nowhere")
    (tmp_path / "file.mp4").write_text("x")
    with pytest.raises(RootUnavailable, match="is not a folder"):
        scan(tmp_path / "file.mp4")
