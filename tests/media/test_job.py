"""The METADATA_GENERATE handler on PostgreSQL (run in-process on a job row of its own):
which files it takes, and the ones it leaves alone."""

from __future__ import annotations

import pytest

from stashhog.errors import JobValidationError
from stashhog.extensions import db
from stashhog.jobs import get_job_spec, validate_job_metadata
from stashhog.media.job import MAX_ATTEMPTS
from stashhog.media.library_files import DEFAULT_EXTENSIONS
from stashhog.media.scanner import scan_root
from stashhog.models import Job
from stashhog.services import job_service
from tests.media.clips import make_clip
from tests.media.support import generate_in_process, rows

pytestmark = pytest.mark.usefixtures("media_db")


@pytest.fixture
def indexed(library):
    for name in ("a.mp4", "b.mp4", "c.mp4"):
        make_clip(library / name, seed=len(name) + ord(name[0]))
    scan_root(str(library), frozenset(DEFAULT_EXTENSIONS))
    return {path.rsplit("/", 1)[-1]: row for path, row in rows().items()}


def test_a_file_that_keeps_killing_its_jobs_is_given_up(indexed):
    poison = indexed["a.mp4"]
    poison.attempts = MAX_ATTEMPTS
    db.session.commit()
    result = generate_in_process([poison.id, indexed["b.mp4"].id])
    assert (result["failed"], result["ready"]) == (1, 1)
    row = rows()[poison.path]
    assert row.status == "failed" and row.error.startswith(f"gave up after {MAX_ATTEMPTS}")


def test_done_files_are_skipped_unless_forced(indexed):
    ids = [row.id for row in indexed.values()]
    assert generate_in_process(ids)["ready"] == 3
    first = rows()[indexed["a.mp4"].path].generated_at
    again = generate_in_process(ids)
    assert (again["skipped"], again["ready"]) == (3, 0)
    assert rows()[indexed["a.mp4"].path].generated_at == first
    metadata = validate_job_metadata(
        "METADATA_GENERATE", {"file_ids": [str(ids[0])], "force": True}
    )
    job = Job(type="METADATA_GENERATE", status="running", job_metadata=metadata)
    db.session.add(job)
    db.session.commit()
    forced = get_job_spec("METADATA_GENERATE").handler(job_service.job_context(job))
    assert forced["ready"] == 1 and rows()[indexed["a.mp4"].path].generated_at > first


def test_files_held_by_another_job_or_missing_are_skipped(indexed):
    other = Job(type="METADATA_GENERATE", status="running", job_metadata={"file_ids": []})
    db.session.add(other)
    db.session.flush()
    held, gone = indexed["a.mp4"], indexed["b.mp4"]
    held.job_id = other.id
    gone.status = "missing"
    db.session.commit()
    result = generate_in_process([held.id, gone.id, indexed["c.mp4"].id])
    assert (result["skipped"], result["ready"]) == (2, 1)
    assert rows()[held.path].job_id == other.id and rows()[held.path].status == "pending"


def test_job_metadata_is_checked():
    for bad, key in [({}, "file_ids"), ({"file_ids": []}, "file_ids"),
                     ({"file_ids": ["nope"]}, "file_ids.0"),
                     ({"file_ids": ["0" * 32], "outputs": ["sprite"]}, "outputs.0")]:  # fmt: skip
        with pytest.raises(JobValidationError) as refused:
            validate_job_metadata("METADATA_GENERATE", bad)
        assert refused.value.key == key
