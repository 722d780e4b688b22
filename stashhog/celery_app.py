"""Celery wired the way Flask documents it: every task runs inside the app context."""

from __future__ import annotations

from typing import Any

from celery import Celery, Task
from flask import Flask, current_app


def init_app(app: Flask) -> Celery:
    class FlaskTask(Task):
        def __call__(self, *args: object, **kwargs: object) -> object:
            with app.app_context():
                return self.run(*args, **kwargs)

    celery = Celery(app.name, task_cls=FlaskTask)
    celery.config_from_object("celeryconfig")
    interval = app.config["RECONCILE_INTERVAL"]
    celery.conf.broker_url = app.config["REDIS_URL"]
    # No "expires": Celery compares it, set on beat's wall clock, with the worker's, so a
    # supervisor host a few seconds ahead discarded every pass. A backlog is skipped by the
    # tasks themselves instead, on Redis's clock (workers/supervisor_tasks.py).
    celery.conf.beat_schedule["reconcile"].update(schedule=interval, options={})
    prune_every = app.config["PRUNE_INTERVAL"]
    celery.conf.beat_schedule["prune"].update(schedule=prune_every, options={})
    celery.flask_app = app  # worker signal handlers need the app context too
    celery.set_default()
    app.extensions["celery"] = celery
    return celery


def get_celery() -> Celery:
    return current_app.extensions["celery"]


def send_task(name: str, *args: Any, **options: Any):
    """Queue a task by name; stashhog/ never imports the task functions."""
    return get_celery().send_task(name, args=args, **options)
