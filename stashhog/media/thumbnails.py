"""Where cover thumbnails live: ``<THUMBNAIL_DIR>/<first two hex digits>/<file id>.jpg``.

Only a file id (a UUID) ever becomes a path here, so nothing a request sends can name another
file; and the folder is the app's own cache, never beside the user's media.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path


def thumbnail_path(cache_dir: str | os.PathLike, file_id: uuid.UUID) -> Path:
    name = uuid.UUID(str(file_id)).hex
    return Path(cache_dir) / name[:2] / f"{name}.jpg"


def save_thumbnail(image, path: Path, size: int) -> None:
    """Write ``image`` (a PIL image) scaled to fit ``size`` pixels, atomically: a reader
    never sees half a JPEG, and a failed write leaves the previous thumbnail in place."""
    cover = image.convert("RGB")
    cover.thumbnail((size, size))
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.part")
    try:
        cover.save(partial, "JPEG", quality=85)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def remove_thumbnail(cache_dir: str | os.PathLike, file_id: uuid.UUID) -> None:
    thumbnail_path(cache_dir, file_id).unlink(missing_ok=True)
