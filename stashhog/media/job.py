"""Job type ``METADATA_GENERATE``: generate the metadata of the files it is given.

Per file, with progress after each: claim it (skipped if another job holds it or it went
missing), generate the wanted outputs, record them. A file that cannot be processed is
``failed`` with its error and the job goes on; the job completes with a summary. A cancel is
honoured between files: the files not reached are released, so the next job takes them.
"""

from __future__ import annotations

import os
import uuid
from typing import Annotated, Literal

from flask import current_app
from pydantic import Field, Strict
from sqlalchemy import update

from stashhog.extensions import db
from stashhog.jobs import JobCancelled, JobContext, JobMetadata, register_job
from stashhog.media import work
from stashhog.media.models import (
    ALL_OUTPUTS,
    GENERATOR_VERSION,
    MediaFile,
    MediaStatus,
    Output,
)
from stashhog.media.thumbnails import remove_thumbnail, thumbnail_path
from stashhog.models import JobType
from stashhog.models.types import utcnow

# A file that was started this many times without a result (its job was killed or timed out
# while on it) is failed instead of started again.
MAX_ATTEMPTS = 3
SUMMARY_ERRORS = 20  # failures listed by name in the job's result
PROBE_COLUMNS = (
    "container", "duration", "width", "height", "frame_rate", "video_codec", "audio_codec",
    "bit_rate",
)  # fmt: skip
OutputName = Literal["probe", "thumbnail", "phash", "checksum"]


class MetadataGenerateMetadata(JobMetadata):
    file_ids: list[Annotated[uuid.UUID, Strict(False)]] = Field(
        min_length=1, max_length=1000, description="The media files to process, in order."
    )
    outputs: list[OutputName] = Field(
        default_factory=lambda: list(ALL_OUTPUTS),
        min_length=1,
        description="What to generate: probe, thumbnail, phash, checksum.",
    )
    force: bool = Field(
        False, description="Regenerate files whose metadata is already complete and current."
    )


@register_job(JobType.METADATA_GENERATE, MetadataGenerateMetadata)
def run_metadata_generate(ctx: JobContext) -> dict:
    meta: MetadataGenerateMetadata = ctx.metadata
    file_ids = list(dict.fromkeys(meta.file_ids))
    wanted = Output.mask(meta.outputs)
    summary = {"files": len(file_ids), "ready": 0, "failed": 0, "skipped": 0, "errors": []}
    for done, file_id in enumerate(file_ids):
        try:
            ctx.check_cancelled()
        except JobCancelled:
            work.release(file_ids[done:], ctx.job_id)
            raise
        outcome, error = process_file(ctx.job_id, file_id, wanted, meta.force)
        summary[outcome] += 1
        if error and len(summary["errors"]) < SUMMARY_ERRORS:
            summary["errors"].append({"file_id": str(file_id), "error": error})
        ctx.report_progress(100 * (done + 1) / len(file_ids), _progress(summary, done + 1))
    return summary


def _progress(summary: dict, done: int) -> str:
    return (
        f"{done} of {summary['files']} files: {summary['ready']} ready, "
        f"{summary['failed']} failed, {summary['skipped']} skipped"
    )


def process_file(
    job_id: uuid.UUID, file_id: uuid.UUID, wanted: int, force: bool = False
) -> tuple[str, str | None]:
    """Generate one file; returns ("ready" | "failed" | "skipped", error)."""
    from stashhog.media.generate import generate_file  # PyAV and friends: only in the job

    row = start_file(job_id, file_id, wanted, force)
    if row is None:
        return "skipped", None
    if row.attempts > MAX_ATTEMPTS:
        error = f"gave up after {MAX_ATTEMPTS} attempts that did not finish"
        finish_file(job_id, file_id, {"status": MediaStatus.FAILED, "error": error})
        return "failed", f"{row.path}: {error}"
    try:
        stat = os.stat(row.path)
    except OSError as exc:
        work.release([file_id], job_id)  # gone or unreadable: the scanner decides which
        return "skipped", f"{row.path}: {exc.strerror or exc}"
    config = current_app.config
    cover = thumbnail_path(config["THUMBNAIL_DIR"], file_id)
    result = generate_file(row.path, row.kind, wanted, cover, int(config["THUMBNAIL_SIZE"]))
    finish_file(job_id, file_id, _columns(result, wanted, stat))
    if not result.produced & Output.THUMBNAIL:
        remove_thumbnail(config["THUMBNAIL_DIR"], file_id)  # never show a stale cover
    if result.errors:
        return "failed", f"{row.path}: {'; '.join(result.errors)}"
    return "ready", None


def _columns(result, wanted: int, stat: os.stat_result) -> dict:
    values = {name: result.values.get(name) for name in PROBE_COLUMNS}
    values.update(
        checksum=result.values.get("checksum"),
        phash=result.values.get("phash"),
        has_thumbnail=bool(result.produced & Output.THUMBNAIL),
        outputs=int(result.produced),
        status=MediaStatus.FAILED if result.errors else MediaStatus.READY,
        error="; ".join(result.errors) or None,
        # What the results were made from: a later change shows as a size/mtime difference.
        size=stat.st_size,
        mtime_ns=stat.st_mtime_ns,
    )
    return values


def start_file(job_id: uuid.UUID, file_id: uuid.UUID, wanted: int, force: bool):
    """Claim the file for this job and count the attempt. None if it is not ours to do:
    missing, held by another job, or (unless ``force``) already done, e.g. by the job a
    cancel interrupted, so the next one resumes where that one stopped."""
    available = MediaFile.job_id.is_(None) if force else work.needs_work(wanted)
    row = db.session.execute(
        update(MediaFile)
        .where(
            MediaFile.id == file_id,
            MediaFile.status != MediaStatus.MISSING,
            available | (MediaFile.job_id == job_id),
        )
        .values(job_id=job_id, attempts=MediaFile.attempts + 1)
        .returning(MediaFile.path, MediaFile.kind, MediaFile.attempts)
    ).one_or_none()
    db.session.commit()
    return row


def finish_file(job_id: uuid.UUID, file_id: uuid.UUID, values: dict) -> None:
    """Record the results and release the file (unless it went missing meanwhile)."""
    db.session.execute(
        update(MediaFile)
        .where(
            MediaFile.id == file_id,
            MediaFile.job_id == job_id,
            MediaFile.status != MediaStatus.MISSING,
        )
        .values(
            job_id=None,
            attempts=0,
            generator_version=GENERATOR_VERSION,
            generated_at=utcnow(),
            **values,
        )
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
