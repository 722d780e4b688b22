"""Finding media files on disk: which names count as media, and a walk of a folder that
returns the size + mtime of each (the index the rescan compares with ``media_files``)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

VIDEO_EXTENSIONS = (
    "mp4", "m4v", "mkv", "webm", "mov", "avi", "wmv", "flv", "mpg", "mpeg", "ts", "3gp",
)  # fmt: skip
IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "gif", "webp", "bmp")
DEFAULT_EXTENSIONS = VIDEO_EXTENSIONS + IMAGE_EXTENSIONS

Stat = tuple[int, int]  # (size, mtime_ns)


class RootUnavailable(OSError):
    """A watched folder that does not exist or cannot be read."""

    def __init__(self, root: str, reason: str) -> None:
        super().__init__(f"{root}: {reason}")
        self.root, self.reason = root, reason


@dataclass
class Listing:
    """What a walk found: files by path, and folders it could not read (whose files must
    not be taken for deleted)."""

    files: dict[str, Stat] = field(default_factory=dict)
    unreadable: list[str] = field(default_factory=list)


def normalise_root(root: str) -> str:
    # Not realpath: watchdog reports paths under the folder as it was given.
    return os.path.normpath(os.path.abspath(os.path.expanduser(root)))


def kind_of(path: str) -> str:
    return "image" if extension_of(path) in IMAGE_EXTENSIONS else "video"


def extension_of(path: str) -> str:
    return os.path.splitext(path)[1].lower().lstrip(".")


def is_media(path: str, extensions: frozenset[str]) -> bool:
    name = os.path.basename(path)
    return not name.startswith(".") and extension_of(name) in extensions


def check_root(root: str) -> None:
    """Raise ``RootUnavailable`` unless ``root`` is a folder we can list."""
    if not os.path.exists(root):
        raise RootUnavailable(root, "does not exist")
    if not os.path.isdir(root):
        raise RootUnavailable(root, "is not a folder")
    try:
        with os.scandir(root):
            pass
    except OSError as exc:
        raise RootUnavailable(root, exc.strerror or str(exc)) from None


def walk(top: str, extensions: frozenset[str], listing: Listing | None = None) -> Listing:
    """Every media file under ``top`` (hidden names and symlinked folders skipped)."""
    listing = listing if listing is not None else Listing()
    folders = [top]
    while folders:
        folder = folders.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            listing.unreadable.append(folder)
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    folders.append(entry.path)
                elif is_media(entry.name, extensions) and entry.is_file():
                    stat = entry.stat()
                    listing.files[entry.path] = (stat.st_size, stat.st_mtime_ns)
            except OSError:
                continue  # vanished while we looked: the next event or rescan settles it
    return listing


def look(path: str, extensions: frozenset[str], listing: Listing) -> None:
    """Add what is at ``path`` now (a file, a folder's files, or nothing) to ``listing``."""
    if os.path.isdir(path) and not os.path.islink(path):
        walk(path, extensions, listing)
        return
    if not is_media(path, extensions):
        return
    try:
        stat = os.stat(path)
    except OSError:
        return
    if os.path.isfile(path):
        listing.files[path] = (stat.st_size, stat.st_mtime_ns)
