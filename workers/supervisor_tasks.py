"""The supervision task beat schedules on the ``supervisor`` queue."""

from __future__ import annotations

import logging

from celery import shared_task

from stashhog.observability import retention
from stashhog.services import job_service, supervisor

logger = logging.getLogger(__name__)


@shared_task(name="stashhog.reconcile", ignore_result=True)
def reconcile() -> list[str]:
    report = supervisor.reconcile()
    if report is None:
        return []
    for action in report.actions:
        logger.info("reconcile: %s", action)
    job_service.enforce_cancellations()
    return report.actions


@shared_task(name="stashhog.prune", ignore_result=True)
def prune() -> dict:
    counts = retention.prune()
    if counts:
        logger.info("retention: pruned %s", dict(counts))
    return dict(counts or {})
