"""Generating one file's metadata: the outputs it was asked for, each failing on its own.

``generate_file`` never raises for a bad file: it returns what it made and an error per
output it could not make, and the job records both (with ``models.GENERATOR_VERSION``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import imagehash

from stashhog.media.checksum import oshash
from stashhog.media.models import Output
from stashhog.media.sources import open_source
from stashhog.media.thumbnails import save_thumbnail

COVER_AT = 0.2  # the cover frame, as a fraction of the duration: past any fade-in


@dataclass
class Generated:
    values: dict = field(default_factory=dict)
    produced: int = 0
    errors: list[str] = field(default_factory=list)

    def fail(self, output: str, exc: BaseException) -> None:
        self.errors.append(f"{output}: {describe(exc)}")


def generate_file(
    path: str, kind: str, wanted: int, thumbnail: Path, thumbnail_size: int
) -> Generated:
    """Make the ``wanted`` outputs (an ``Output`` mask) of the file at ``path``."""
    result = Generated()
    if wanted & Output.CHECKSUM:
        try:
            result.values["checksum"] = oshash(path)
            result.produced |= Output.CHECKSUM
        except Exception as exc:
            result.fail("checksum", exc)
    if wanted & (Output.PROBE | Output.THUMBNAIL | Output.PHASH):
        try:
            source = open_source(path, kind)
        except Exception as exc:
            result.fail("open", exc)
            return result
        try:
            _from_source(source, wanted, result, thumbnail, thumbnail_size)
        finally:
            source.close()
    return result


def _from_source(source, wanted: int, result: Generated, thumbnail: Path, size: int) -> None:
    def probe() -> None:
        result.values.update(source.probe())

    def cover() -> None:
        save_thumbnail(source.frame(COVER_AT), thumbnail, size)

    def phash() -> None:
        result.values["phash"] = str(imagehash.phash(source.hash_image()))

    for output, step in ((Output.PROBE, probe), (Output.THUMBNAIL, cover), (Output.PHASH, phash)):
        if wanted & output:
            try:
                step()
                result.produced |= output
            except Exception as exc:
                result.fail(output.name.lower(), exc)


def describe(exc: BaseException) -> str:
    # FFmpeg and OS errors carry the file's path and an errno in str(): the row names the
    # file already, so keep only the reason.
    text = (getattr(exc, "strerror", None) or str(exc)).strip() or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."
