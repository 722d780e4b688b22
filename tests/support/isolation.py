"""Run a test against worker processes of its own, while session workers stand aside."""

from __future__ import annotations

import contextlib

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
