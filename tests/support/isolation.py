"""Run a test against worker processes of its own, while session workers stand aside."""

from __future__ import annotations

import contextlib
import uuid

from tests.support import services
from tests.support.workers import WorkerProcess, start_daemons_worker


@contextlib.contextmanager
def only_worker_on_queue(celery_app, queue: str, worker: WorkerProcess):
    """Other workers stop consuming ``queue`` (Celery remote control) until the block ends.
    Only those that consumed it before get it back."""
    consuming = celery_app.control.inspect(timeout=1.0).active_queues() or {}
    others = [
        name
        for name, queues in consuming.items()
        if name != worker.hostname() and any(q["name"] == queue for q in queues)
    ]
    if others:
        celery_app.control.cancel_consumer(queue, destination=others, reply=True, timeout=2)
    try:
        yield worker
    finally:
        if others:
            celery_app.control.add_consumer(queue, destination=others, reply=True, timeout=2)


@contextlib.contextmanager
def dedicated_daemons_worker(worker_env, celery_app, concurrency: int = 2):
    """A daemons worker of the test's own, the only one consuming ``daemons`` meanwhile."""
    worker = start_daemons_worker(worker_env, celery_app, concurrency=concurrency)
    try:
        with only_worker_on_queue(celery_app, "daemons", worker):
            yield worker
    finally:
        if worker.proc.poll() is None:
            worker.kill()
        worker.log.close()


@contextlib.contextmanager
def own_broker_worker(app, worker_env, database_url, *, label: str, concurrency: int = 1,
                      pool: str = "prefork", **env):  # fmt: skip
    """An app and a daemons worker (``env`` added to its environment) on a Redis database
    of their own, sharing the session's PostgreSQL: the session's workers never see these
    starts. Yields (app, worker); the worker is stopped, or killed if it lingers."""
    from stashhog import create_app
    from stashhog.events import get_redis, key
    from stashhog.extensions import db

    try:
        redis_url, _client = services.claim_redis_database()
    except Exception as exc:
        services.unavailable("Redis (TEST_REDIS_URL)", exc)
    prefix = f"stashhog-{label}-{uuid.uuid4().hex[:6]}"
    config = {name: app.config[name] for name in ("SECRET_KEY", "DAEMON_MODULES")}
    config |= {"TESTING": True, "SQLALCHEMY_DATABASE_URI": database_url, "REDIS_URL": redis_url,
               "REDIS_PREFIX": prefix, "STOP_TIMEOUT": 5.0}  # fmt: skip
    own = create_app(config)
    env = {**worker_env, "REDIS_URL": redis_url, "STASHHOG_REDIS_PREFIX": prefix, **env}
    worker = start_daemons_worker(env, own.extensions["celery"], concurrency=concurrency,
                                  pool=pool)  # fmt: skip
    try:
        with own.app_context():
            yield own, worker
            db.session.remove()
    finally:
        # This app's supervisor passes marked the (shared) database's last pass: the session's
        # next pass must not take its own Redis, which has no mark of them, for a restarted
        # one (and hold every lost instance for a grace).
        with app.app_context():
            get_redis().set(key("supervisor", "seen"), 1)
        worker.stop()
        app.extensions["celery"].set_default()
        services.release_redis_database(redis_url)
