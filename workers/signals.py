"""Worker process hooks: a frozen GC heap before the pool forks, fresh database connections
after fork, and a graceful stop of the worker's own daemons on warm shutdown (a deploy), so
the worker exits in seconds.

A daemons worker's pool decides how its processes share (workers/process_services.py): a
threads worker (``-P threads``; no ``worker_process_init``, every daemon in the main process)
gets a bounded shared database pool at ``worker_init``; a prefork child gets one without idle
connections after fork. The shutdown hook is what stops a threads worker's daemons: signals
reach the main thread only, so its daemons never see a SIGTERM themselves."""

from __future__ import annotations

import gc
import logging
import os

import redis
from celery.signals import worker_init, worker_process_init, worker_shutting_down
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy import select

from stashhog.control import mark_shutting_down, send_stop
from stashhog.database import dispose_engine_after_fork
from stashhog.extensions import db
from stashhog.models import Daemon
from stashhog.models.enums import RUNNING_STATES
from workers import process_services
from workers.threads import TaskPool as ThreadsTaskPool

DAEMONS_QUEUE = "daemons"
_daemons_worker = False  # set in the main process at worker_init; inherited by the children

logger = logging.getLogger(__name__)


@worker_init.connect
def freeze_before_fork(**_kwargs) -> None:
    """Move what the main process allocated into the GC's permanent generation before the
    pool forks: the children's collections then never write to, and so never copy, those
    pages (bench/memory.py: an idle -c 4 worker 170 MB -> 44 MB unique memory)."""
    gc.collect()
    gc.freeze()


@worker_init.connect
def choose_process_services(sender=None, **_kwargs) -> None:
    """A daemons worker: which pool (``sender.pool_cls`` is still the name given, or a
    class), for the process services and the database pool."""
    global _daemons_worker
    from celery import current_app as celery

    queues = getattr(getattr(sender.app.amqp, "queues", None), "consume_from", None) or {}
    _daemons_worker = DAEMONS_QUEUE in queues
    if _daemons_worker:
        pool = sender.pool_cls
        name = pool if isinstance(pool, str) else f"{pool.__module__}.{pool.__name__}"
        threads = name == "threads" or "concurrency.thread" in name or pool is ThreadsTaskPool
        if threads:  # still before Celery resolves the pool: a terminate is not an error
            sender.pool_cls = ThreadsTaskPool
        process_services.worker_starting(celery.flask_app, "threads" if threads else "prefork")


@worker_process_init.connect
def reset_connections(sender=None, **_kwargs) -> None:
    from celery import current_app as celery

    if _daemons_worker:
        process_services.child_starting(celery.flask_app)
    else:
        dispose_engine_after_fork(celery.flask_app)
    bound_redis_calls(celery.flask_app)


@worker_init.connect
def bound_main_process_redis(**_kwargs) -> None:
    from celery import current_app as celery

    bound_redis_calls(celery.flask_app)


def bound_redis_calls(app) -> None:
    """A worker's Redis calls fail within a second and are not retried by the client: the
    callers retry on their own schedule (lease renewal every TTL/3), and a host cut off from
    Redis must not sit a minute in one call (redis-py's default: 10 retries with backoff)."""
    url = app.config["REDIS_URL"]
    app.extensions["redis"] = redis.Redis.from_url(
        url, socket_connect_timeout=1, socket_timeout=1, retry=Retry(NoBackoff(), 0)
    )


@worker_shutting_down.connect
def stop_local_daemons(sender=None, **_kwargs) -> None:
    """Ask this worker's daemons to stop; their desired state stays RUNNING, so the
    supervisor starts them again on a worker that is up."""
    from celery import current_app as celery

    ask_local_daemons_to_stop(celery.flask_app, str(sender))


def ask_local_daemons_to_stop(app, hostname: str) -> int:
    """Mark this worker process shutting down, then publish a shutdown stop to each of its
    daemons; returns how many."""
    with app.app_context():
        # First the mark, for an instance not yet listening when its stop is published (a
        # start a moment before the shutdown: it would run on and hold the shutdown up).
        mark_shutting_down(hostname, os.getpid())
        query = select(Daemon.id, Daemon.generation).where(
            Daemon.worker == hostname,
            Daemon.status.in_(list(RUNNING_STATES)),
        )
        local = db.session.execute(query).all()
        for daemon_id, generation in local:
            send_stop(daemon_id, generation, None, shutdown=True)
        db.session.remove()
    logger.info("asked %d local daemon(s) to stop for shutdown", len(local))
    return len(local)
