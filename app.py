"""Entry point: ``flask --app app``, ``gunicorn app:app`` and ``celery -A app.celery``."""

import sys

from stashhog import create_app
from stashhog.config import BAD_CONFIGURATION_EXIT, CONFIGURATION_ERRORS

try:
    app = create_app()
except CONFIGURATION_ERRORS as exc:
    # One clear line for every process that imports this (web, workers, beat, the CLI).
    print(f"stashhog: {exc}", file=sys.stderr)
    raise SystemExit(BAD_CONFIGURATION_EXIT) from None
celery = app.extensions["celery"]
