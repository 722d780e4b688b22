"""The METADATA_GENERATE_WATCHER's settings: a schema with a description, bounds and a
default for every key, from which the panel builds its form and the API validates."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from stashhog.daemons.config import DaemonConfig
from stashhog.media.library_files import DEFAULT_EXTENSIONS
from stashhog.media.models import ALL_OUTPUTS

Folder = Annotated[str, StringConstraints(min_length=1, max_length=4096, pattern=r"^[^\x00]+$")]
Extension = Annotated[str, StringConstraints(pattern=r"^\.?[A-Za-z0-9]{1,10}$")]
OutputName = Literal["probe", "thumbnail", "phash", "checksum"]


class WatcherConfig(DaemonConfig):
    roots: list[Folder] = Field(
        default_factory=list,
        max_length=100,
        description="Folders to watch, subfolders included (absolute paths). A folder that "
        "does not exist or cannot be read is reported and the others are still watched.",
    )
    extensions: list[Extension] = Field(
        default_factory=lambda: list(DEFAULT_EXTENSIONS),
        min_length=1,
        max_length=100,
        description="File extensions taken as media (videos and images; case-insensitive).",
    )
    scan_interval: float = Field(
        300,
        ge=1,
        le=86400,
        description="Seconds between full rescans (size + mtime), the safety net for changes "
        "filesystem events missed. An unchanged library's rescan writes nothing.",
    )
    settle_seconds: float = Field(
        0.5,
        ge=0,
        le=60,
        description="Seconds a file must be quiet after its last event before it is read, so "
        "a file still being written is taken once complete.",
    )
    batch_size: int = Field(20, ge=1, le=1000, description="Files per METADATA_GENERATE job.")
    max_concurrent_jobs: int = Field(
        2,
        ge=1,
        le=100,
        description="METADATA_GENERATE jobs running at once (also bounded by max_active_jobs).",
    )
    job_timeout: float = Field(
        3600,
        ge=1,
        le=86400,
        description="Seconds a METADATA_GENERATE job may take before the watcher cancels it "
        "and stops counting it against max_concurrent_jobs, so one slow batch cannot hold up "
        "the others; its unfinished files go to later batches.",
    )
    outputs: list[OutputName] = Field(
        default_factory=lambda: list(ALL_OUTPUTS),
        min_length=1,
        max_length=4,
        description="Metadata to generate: probe (container, duration, size, frame rate, "
        "codecs, bitrate), thumbnail (cover image), phash (perceptual hash), checksum (oshash).",
    )
