"""The library index: bring ``media_files`` in line with what is on disk.

``scan_root`` compares a folder (all of it, or only the paths filesystem events named) with
the rows indexed under it, by size and mtime, and writes only the differences: new files
(pending), changed ones (pending again), moved ones (same oshash at a new path: the row, and
so its metadata and thumbnail, follows the file), files that came back, and deleted ones
(missing). A scan that finds no difference only reads.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import insert, or_, select, update

from stashhog.extensions import db
from stashhog.media.checksum import oshash
from stashhog.media.library_files import Listing, Stat, check_root, kind_of, look, walk
from stashhog.media.models import MediaFile, MediaStatus
from stashhog.models.types import utcnow

# More touched paths than this and a partial scan reads the whole root instead.
MAX_PARTIAL_PATHS = 200
INDEX_COLUMNS = (
    MediaFile.id, MediaFile.path, MediaFile.root, MediaFile.size, MediaFile.mtime_ns,
    MediaFile.status, MediaFile.checksum, MediaFile.outputs, MediaFile.error,
)  # fmt: skip


@dataclass
class ScanResult:
    root: str
    files: int = 0
    added: int = 0
    changed: int = 0
    moved: int = 0
    returned: int = 0
    missing: int = 0

    @property
    def changes(self) -> int:
        return self.added + self.changed + self.moved + self.returned + self.missing

    def describe(self) -> str:
        parts = [f"{n} {what}" for what, n in self._counts() if n]
        return ", ".join(parts) or "no changes"

    def _counts(self):
        return (("new", self.added), ("changed", self.changed), ("moved", self.moved),
                ("back", self.returned), ("missing", self.missing))  # fmt: skip


def scan_root(root: str, extensions: frozenset[str], touched: set[str] | None = None) -> ScanResult:
    """Scan ``root`` (normalised), or only the ``touched`` paths under it. Raises
    ``RootUnavailable`` if the folder cannot be read, before changing anything."""
    check_root(root)
    if touched is not None and len(touched) > MAX_PARTIAL_PATHS:
        touched = None
    listing = Listing()
    if touched is None:
        walk(root, extensions, listing)
    else:
        for path in sorted(p for p in touched if _visible_under(root, p)):
            look(path, extensions, listing)
    index = _index(root, touched)
    result = ScanResult(root, files=len(listing.files))
    _apply(root, listing, index, result)
    db.session.commit()
    return result


def _visible_under(root: str, path: str) -> bool:
    relative = os.path.relpath(path, root)
    parts = relative.split(os.sep)
    return relative != "." and parts[0] != ".." and not any(p.startswith(".") for p in parts)


def _index(root: str, touched: set[str] | None) -> dict[str, object]:
    query = select(*INDEX_COLUMNS).where(MediaFile.root == root)
    if touched is not None:
        if not touched:
            return {}
        query = query.where(or_(*(_at_or_under(path) for path in touched)))
    return {row.path: row for row in db.session.execute(query)}


def _at_or_under(path: str):
    return (MediaFile.path == path) | MediaFile.path.startswith(path + os.sep, autoescape=True)


def _apply(root: str, listing: Listing, index: dict, result: ScanResult) -> None:
    new: dict[str, Stat] = {}
    for path, stat in listing.files.items():
        row = index.get(path)
        if row is None:
            new[path] = stat
        elif row.status == MediaStatus.MISSING:
            same = (row.size, row.mtime_ns) == stat
            _update(row.id, _restored(row, stat) if same else _changed(stat), missing_since=None)
            result.returned += 1
        elif (row.size, row.mtime_ns) != stat:
            _update(row.id, _changed(stat))
            result.changed += 1
    lost = [
        row
        for path, row in index.items()
        if path not in listing.files
        and row.status != MediaStatus.MISSING
        and not _under_any(path, listing.unreadable)
    ]
    moved = _match_moves(new, lost)
    for row, path in moved:
        stat = new.pop(path)
        _update(row.id, _restored(row, stat), path=path, root=root, missing_since=None)
    moved_ids = {row.id for row, _path in moved}
    gone = [row for row in lost if row.id not in moved_ids]
    _mark_missing(gone)
    _insert(root, new)
    result.moved, result.missing, result.added = len(moved), len(gone), len(new)


def _under_any(path: str, folders: list[str]) -> bool:
    return any(path.startswith(folder + os.sep) for folder in folders)


def _changed(stat: Stat) -> dict:
    size, mtime_ns = stat
    return {"size": size, "mtime_ns": mtime_ns, "status": MediaStatus.PENDING, "attempts": 0,
            "error": None}  # fmt: skip


def _restored(row, stat: Stat) -> dict:
    """A file seen again with the same content (back in place, or moved): its results stand,
    and so does the status they had."""
    status = row.status
    if status == MediaStatus.MISSING:
        status = MediaStatus.FAILED if row.error else MediaStatus.READY
        status = status if row.outputs else MediaStatus.PENDING
    return {"size": stat[0], "mtime_ns": stat[1], "status": status}


def _match_moves(new: dict[str, Stat], lost: list) -> list[tuple[object, str]]:
    """Pairs (row, new path) of files that moved: same size and oshash."""
    if not new:
        return []
    candidates = defaultdict(list)
    for row in [*lost, *_missing_elsewhere({size for size, _ in new.values()}, lost)]:
        if row.checksum:
            candidates[row.size].append(row)
    pairs = []
    for path, (size, _mtime) in sorted(new.items()):
        if not candidates.get(size):
            continue
        try:
            checksum = oshash(path)
        except (OSError, ValueError):
            continue
        match = next((row for row in candidates[size] if row.checksum == checksum), None)
        if match is not None:
            candidates[size].remove(match)
            pairs.append((match, path))
    return pairs


def _missing_elsewhere(sizes: set[int], lost: list) -> list:
    """Rows already marked missing (in any root) that a new file might be."""
    seen = {row.id for row in lost}
    query = select(*INDEX_COLUMNS).where(
        MediaFile.status == MediaStatus.MISSING, MediaFile.size.in_(sorted(sizes))
    )
    return [row for row in db.session.execute(query) if row.id not in seen]


def _update(file_id, values: dict, **more) -> None:
    db.session.execute(
        update(MediaFile).where(MediaFile.id == file_id).values(**values, **more)
        .execution_options(synchronize_session=False)
    )  # fmt: skip


def _mark_missing(rows: list) -> None:
    if rows:
        db.session.execute(
            update(MediaFile)
            .where(MediaFile.id.in_([row.id for row in rows]))
            .values(status=MediaStatus.MISSING, missing_since=utcnow())
            .execution_options(synchronize_session=False)
        )


def _insert(root: str, files: dict[str, Stat]) -> None:
    if files:
        rows = [
            {"path": path, "root": root, "kind": kind_of(path), "size": size,
             "mtime_ns": mtime_ns, "status": MediaStatus.PENDING}
            for path, (size, mtime_ns) in sorted(files.items())
        ]  # fmt: skip
        db.session.execute(insert(MediaFile), rows)
