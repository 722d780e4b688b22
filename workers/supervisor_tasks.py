"""The supervision task beat schedules on the ``supervisor`` queue."""

from __future__ import annotations

import logging
import time

from celery import shared_task
from flask import current_app
from sqlalchemy.exc import OperationalError

from stashhog.events import get_redis, key
from stashhog.observability import retention
from stashhog.services import job_service, supervisor

logger = logging.getLogger(__name__)
# A supervisor that cannot reach PostgreSQL hands its pass to another and keeps its (solo)
# slot this long, so the next passes go to a supervisor that can.
HAND_BACK_HOLD = 2.0


def due(name: str, every: float) -> bool:
    """False when a run of ``name`` started within the last half ``every`` seconds: beat's
    messages queued while no worker took them (a backlog) are skipped in a millisecond each.
    Redis's clock decides (a key's TTL), not the hosts' wall clocks, unlike Celery's
    ``expires``."""
    return bool(get_redis().set(key("scheduled", name), 1, nx=True, px=int(every * 500)))


@shared_task(name="stashhog.reconcile", ignore_result=True, bind=True)
def reconcile(self, handed_back: bool = False) -> list[str]:
    if not handed_back and not due("reconcile", current_app.config["RECONCILE_INTERVAL"]):
        return []
    try:
        report = supervisor.reconcile()
    except OperationalError:
        # Cut off from the database but not from Redis, this supervisor would take (and
        # fail) every pass: another supervisor would never see one.
        logger.warning("database unreachable: handing the pass to another supervisor",
                       exc_info=True)  # fmt: skip
        if not handed_back:
            self.apply_async(kwargs={"handed_back": True})
        time.sleep(HAND_BACK_HOLD)
        return []
    if report is None:
        return []
    for action in report.actions:
        logger.info("reconcile: %s", action)
    job_service.enforce_cancellations()
    return report.actions


@shared_task(name="stashhog.prune", ignore_result=True)
def prune() -> dict:
    if not due("prune", current_app.config["PRUNE_INTERVAL"]):
        return {}
    counts = retention.prune()
    if counts:
        logger.info("retention: pruned %s", dict(counts))
    return dict(counts or {})
