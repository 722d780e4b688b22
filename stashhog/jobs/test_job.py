"""Job type TEST: a number of timed steps with progress, for trying out daemons and workers.

Besides ``steps`` and ``step_seconds`` it can simulate the two things a real job does badly:
fail part-way (``fail_at_step``) and ignore cancellation (``ignore_cancel``), which is how the
forced-cancel path (revoke with SIGTERM) is exercised.
"""

from __future__ import annotations

import time

from pydantic import Field

from stashhog.jobs import JobContext, JobMetadata, register_job
from stashhog.models import JobType


class TestJobMetadata(JobMetadata):
    __test__ = False  # not a pytest class, despite the name

    steps: int = Field(5, ge=1, le=1000)
    step_seconds: float = Field(2.0, ge=0, le=3600)
    fail_at_step: int | None = Field(None, ge=1)
    ignore_cancel: bool = False


@register_job(JobType.TEST, TestJobMetadata)
def run_test_job(ctx: JobContext) -> dict:
    """Run ``steps`` steps of ``step_seconds``; progress is reported as each step starts."""
    meta: TestJobMetadata = ctx.metadata
    started = time.monotonic()
    for step in range(1, meta.steps + 1):
        ctx.report_progress(100 * (step - 1) / meta.steps, f"Step {step} of {meta.steps}")
        if step == meta.fail_at_step:
            raise RuntimeError(f"simulated failure at step {step}")
        if meta.ignore_cancel:
            time.sleep(meta.step_seconds)
        else:
            ctx.sleep(meta.step_seconds)
    return {"steps": meta.steps, "elapsed": round(time.monotonic() - started, 3)}
