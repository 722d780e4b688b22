"""``GET /api/health``: 200 when database, Redis and both queues are served, else 503."""

from flask import jsonify

from stashhog.api import bp
from stashhog.services.health import system_health


@bp.get("/health")
def health():
    report = system_health()
    return jsonify(report), 200 if report["status"] == "ok" else 503
