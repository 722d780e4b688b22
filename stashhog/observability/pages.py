"""Pages of observability (the Alerts page) and ``/metrics`` for Prometheus. Both sit under the
access policy like every other view: a scrape sends a viewer's API token as its bearer
credentials (``authorization: {credentials: …}`` in the scrape config)."""

from flask import render_template

from stashhog.observability.prometheus import metrics_response
from stashhog.web import bp


@bp.get("/alerts")
def alert_list():
    return render_template("alerts/list.html")


@bp.get("/metrics")
def prometheus_metrics():
    return metrics_response()
