"""``GET /api/health``: readiness, 200 when database, Redis and both queues are served, else
503. ``GET /api/health/live``: liveness, 200 whenever the web process answers."""

from flask import jsonify

from stashhog.api import bp
from stashhog.services.health import liveness, system_health


@bp.get("/health")
def health():
    report = system_health()
    return jsonify(report), 200 if report["status"] == "ok" else 503


@bp.get("/health/live")
def health_live():
    return jsonify(liveness())
