"""The job registry: for each ``JobType`` a handler and the schema of its metadata.

A job type is added with a metadata model (a ``JobMetadata`` subclass, so unknown keys and
wrong types are refused) and a handler that takes a ``JobContext``::

    @register_job(JobType.TEST, TestJobMetadata)
    def run_test_job(ctx: JobContext) -> dict: ...
"""

from __future__ import annotations

import reprlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from stashhog.errors import JobValidationError
from stashhog.jobs.context import JobCancelled, JobContext
from stashhog.models import JobType

JobHandler = Callable[[JobContext], dict[str, Any] | None]

__all__ = [
    "JobCancelled",
    "JobContext",
    "JobHandler",
    "JobMetadata",
    "JobSpec",
    "get_job_spec",
    "parse_job_metadata",
    "register_job",
    "registered_job_types",
    "validate_job_metadata",
]


class JobMetadata(BaseModel):
    """Base of every metadata schema. Strict, so "5" is not an integer: metadata arrives as
    JSON and a wrong type is the caller's mistake, not something to coerce."""

    model_config = ConfigDict(extra="forbid", strict=True)


@dataclass(frozen=True)
class JobSpec:
    type: JobType
    metadata_model: type[JobMetadata]
    handler: JobHandler


_REGISTRY: dict[JobType, JobSpec] = {}


def register_job(
    job_type: JobType, metadata_model: type[JobMetadata]
) -> Callable[[JobHandler], JobHandler]:
    """Decorator registering ``handler`` as the one implementation of ``job_type``."""

    def decorator(handler: JobHandler) -> JobHandler:
        if job_type in _REGISTRY:
            raise ValueError(f"job type {job_type} is already registered")
        _REGISTRY[job_type] = JobSpec(JobType(job_type), metadata_model, handler)
        return handler

    return decorator


def registered_job_types() -> list[JobType]:
    return sorted(_REGISTRY)


def get_job_spec(job_type: JobType | str) -> JobSpec:
    """The registered spec, or ``JobValidationError("type", ...)``."""
    known = f"(known: {', '.join(registered_job_types())})"
    try:
        spec = _REGISTRY.get(JobType(job_type))
    except ValueError:
        raise JobValidationError("type", f"unknown job type {job_type!r} {known}") from None
    if spec is None:
        raise JobValidationError("type", f"no handler for job type {job_type!r} {known}")
    return spec


def parse_job_metadata(job_type: JobType | str, metadata: Mapping[str, Any] | None) -> BaseModel:
    """Metadata as the type's model, defaults filled in; ``JobValidationError`` if invalid."""
    spec = get_job_spec(job_type)
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, Mapping):
        raise JobValidationError("metadata", "must be a JSON object")
    try:
        return spec.metadata_model.model_validate(dict(metadata))
    except ValidationError as exc:
        raise _validation_error(exc, spec.type) from None


def validate_job_metadata(job_type: JobType | str, metadata: Mapping[str, Any] | None) -> dict:
    """Metadata checked against the type's schema, as the JSON dict to store (with defaults)."""
    return parse_job_metadata(job_type, metadata).model_dump(mode="json")


def _validation_error(exc: ValidationError, job_type: JobType) -> JobValidationError:
    error = exc.errors()[0]
    key = ".".join(str(part) for part in error["loc"]) or "metadata"
    if error["type"] == "extra_forbidden":
        return JobValidationError(key, f"unknown key for job type {job_type}")
    return JobValidationError(key, f"{error['msg']} (got {reprlib.repr(error['input'])})")


# Built-in job types register themselves on import; last, since they import from here.
from stashhog.jobs import test_job  # noqa: E402, F401
from stashhog.media import job as media_job  # noqa: E402, F401
from stashhog.observability import notify  # noqa: E402, F401
