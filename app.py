"""Entry point: ``flask --app app``, ``gunicorn app:app`` and ``celery -A app.celery``."""

from stashhog import create_app

app = create_app()
celery = app.extensions["celery"]
