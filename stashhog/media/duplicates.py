"""Duplicate groups: files whose perceptual hashes are within ``max_distance`` bits (Hamming
distance) of another in the group, linked transitively, as Stash users use phash to find
re-encodes and copies.

All pairs are compared with numpy (XOR and popcount of 64-bit hashes, one row at a time):
about a second for 10,000 hashed files on two cores.
"""

from __future__ import annotations

from sqlalchemy import select

from stashhog.extensions import db
from stashhog.media.models import MediaFile, MediaStatus


def duplicate_groups(max_distance: int, limit: int = 100) -> list[dict]:
    """Groups, largest first, as ``{"distance": widest pair in the group, "files": rows}``."""
    import numpy as np  # only here: no other web request needs it

    query = select(MediaFile.id, MediaFile.phash).where(
        MediaFile.phash.is_not(None), MediaFile.status != MediaStatus.MISSING
    )
    hashed = db.session.execute(query.order_by(MediaFile.path)).all()
    hashes = np.array([int(phash, 16) for _, phash in hashed], dtype=np.uint64)
    parent = list(range(len(hashed)))
    for i in range(len(hashed) - 1):
        close = np.nonzero(np.bitwise_count(hashes[i + 1 :] ^ hashes[i]) <= max_distance)[0]
        for offset in close:
            _union(parent, i, i + 1 + int(offset))
    members: dict[int, list[int]] = {}
    for index in range(len(hashed)):
        members.setdefault(_find(parent, index), []).append(index)
    groups = sorted((m for m in members.values() if len(m) > 1), key=lambda m: (-len(m), m[0]))
    result = []
    for indexes in groups[:limit]:
        group = hashes[indexes]
        widest = int(np.bitwise_count(group[:, None] ^ group[None, :]).max())
        result.append({"distance": widest, "files": _rows([hashed[i].id for i in indexes])})
    return result


def _rows(ids: list) -> list[MediaFile]:
    found = {
        row.id: row for row in db.session.scalars(select(MediaFile).where(MediaFile.id.in_(ids)))
    }
    return [found[file_id] for file_id in ids if file_id in found]


def _find(parent: list[int], index: int) -> int:
    while parent[index] != index:
        parent[index] = parent[parent[index]]
        index = parent[index]
    return index


def _union(parent: list[int], a: int, b: int) -> None:
    root_a, root_b = _find(parent, a), _find(parent, b)
    if root_a != root_b:
        parent[max(root_a, root_b)] = min(root_a, root_b)
