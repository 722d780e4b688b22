"""``/api/daemons``: list, inspect, control and configure daemons; their logs and job history.

Routes only parse (see ``stashhog.api.openapi.route``), call the service that does the work
(``daemon_control``, ``daemon_queries``, ``daemon_configuration``) and shape.
"""

from __future__ import annotations

import uuid

from flask import Response, request
from pydantic import Field

from stashhog.api import bp
from stashhog.api.openapi import route
from stashhog.api.responses import (
    BulkResult,
    DaemonAction,
    DaemonList,
    DaemonOut,
    DaemonUpdated,
    DefaultConfig,
    HealthReport,
    HistoryList,
    LogList,
)
from stashhog.api.schemas import (
    ActionQuery,
    DaemonUpdate,
    HistoryQuery,
    LogsQuery,
    Query,
    StopQuery,
)
from stashhog.daemons import get_daemon_class
from stashhog.services import daemon_configuration, daemon_control, daemon_queries
from stashhog.services.daemon_catalog import default_configuration
from stashhog.services.daemon_listing import daemon_listing


class DaemonListQuery(Query):
    limit: int | None = Field(None, ge=1, le=1000, description="At most this many daemons.")
    offset: int = Field(0, ge=0, description="Skip this many daemons (by name) first.")


@route("GET /daemons", DaemonList, query=DaemonListQuery)
def list_daemons(query: DaemonListQuery):
    """All daemons, by name; a page of them with ``limit`` and ``offset``.

    Each with its status, desired state, health (healthy, unhealthy or stopped, with a
    reason), uptime, last heartbeat, status line and stored configuration; ``total`` counts
    every daemon. Polled more than 8 times a second, a list is reused for 0.25 s by the
    requests that follow (at 1,000 daemons building one takes ~15 ms), unless a request
    sends ``Cache-Control: no-cache``; a write through the API starts a new one. The answer
    carries a weak ETag: send it back as If-None-Match and an unchanged list is a 304 with no
    body (any heartbeat changes it)."""
    fresh = bool(request.cache_control.no_cache)
    page = daemon_listing().page(query.limit, query.offset, fresh=fresh)
    if request.if_none_match.contains_weak(page.etag):
        response = Response(status=304)
    else:
        response = Response(page.body, mimetype="application/json")
    response.set_etag(page.etag, weak=True)
    return response


@bp.after_request
def _after_a_write(response: Response) -> Response:
    """A write (start, stop, edit…) shows in the next list at once (see list_daemons)."""
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        daemon_listing().forget_recent()
    return response


@route("GET /daemons/health/check", HealthReport)
def health_check():
    """Daemons grouped by health.

    Healthy daemons carry their uptime; unhealthy and stopped ones a reason. Unhealthy means
    it should be running but has no live instance, no recent heartbeat, or ended in error."""
    return daemon_queries.health_report()


@route("GET /daemons/<uuid:daemon_id>", DaemonOut)
def get_daemon(daemon_id: uuid.UUID):
    """One daemon, with its ETag (send it back as If-Match with a PUT)."""
    daemon = daemon_queries.get_daemon(daemon_id)
    return daemon, {"ETag": daemon["etag"]}


@route("PUT /daemons/<uuid:daemon_id>", DaemonUpdated, body=DaemonUpdate, errors=(409, 412))
def update_daemon(daemon_id: uuid.UUID, body: DaemonUpdate):
    """Update configuration, enabled, auto_start or name.

    A partial update: fields left out stay as they are, and configuration keys are merged over
    the stored ones (a key set to null is reset to its default). The merged configuration is
    validated against the daemon type's schema before anything is written; an invalid key is
    a 422 naming it. ``restart_required`` says whether a running daemon must be restarted to
    use the new configuration."""
    result = daemon_configuration.update_daemon(
        daemon_id, if_match=request.headers.get("If-Match"), clear=body.cleared(),
        **body.model_dump(exclude_none=True),
    )  # fmt: skip
    return result, {"ETag": result["daemon"]["etag"]}


@route("GET /daemons/<uuid:daemon_id>/default-config", DefaultConfig, errors=(409,))
def default_config(daemon_id: uuid.UUID):
    """The configuration keys of the daemon's type: default, description and type."""
    daemon = daemon_queries.get_daemon(daemon_id)
    schema = get_daemon_class(daemon["type"]).Config
    return {
        "daemon_id": daemon["id"],
        "type": daemon["type"],
        "configuration": daemon_configuration.default_config(daemon_id),
        "schema": schema.model_json_schema(),
        "default_configuration": default_configuration(schema),
    }


@route("POST /daemons/<uuid:daemon_id>/start", DaemonAction, query=ActionQuery, errors=(409, 422))
def start_daemon(daemon_id: uuid.UUID, query: ActionQuery):
    """Start a daemon, after what it depends on.

    Idempotent: starting a running daemon changes nothing (``changed`` is false). A disabled
    daemon is a 409; a stored configuration that no longer validates is a 422 (either of a
    daemon it depends on, too). What it depends on starts first (``dependencies_started``);
    it starts once each is RUNNING with a heartbeat: within ``wait``, else the supervisor
    starts it then (until then ``waiting_for`` names them)."""
    return daemon_control.start_daemon(daemon_id, wait=query.wait)


@route("POST /daemons/<uuid:daemon_id>/stop", DaemonAction, query=StopQuery, errors=(409,))
def stop_daemon(daemon_id: uuid.UUID, query: StopQuery):
    """Stop a daemon, after the daemons that depend on it.

    Idempotent: stopping a stopped daemon changes nothing (``changed`` is false). The daemon's
    ``on_stop`` runs; after the stop timeout it is killed. Its running dependents stop first,
    transitively, each wave once the one before has stopped (``dependents_stopped``); with
    ``cascade=false`` the stop is refused instead (409, ``dependents`` names them)."""
    return daemon_control.stop_daemon(daemon_id, wait=query.wait, cascade=query.cascade)


@route("POST /daemons/<uuid:daemon_id>/restart", DaemonAction, query=ActionQuery, errors=(409, 422))
def restart_daemon(daemon_id: uuid.UUID, query: ActionQuery):
    """Restart a daemon: stop it (waiting up to the stop timeout), then start it.

    Its dependents stop first and start again once it is RUNNING with a heartbeat
    (``dependents_stopped``, ``dependents_restarted``)."""
    return daemon_control.restart_daemon(daemon_id, wait=query.wait)


@route("GET /daemons/<uuid:daemon_id>/logs", LogList, query=LogsQuery)
def daemon_logs(daemon_id: uuid.UUID, query: LogsQuery):
    """Log lines of a daemon, newest first.

    Lines are ordered by id, so ``after_id``/``before_id`` page without gaps or repeats; to
    catch up after a reconnect ask for ``after_id=<last seen>&order=asc``."""
    return {"logs": daemon_queries.get_logs(daemon_id, **query.model_dump(exclude_none=True))}


@route("GET /daemons/<uuid:daemon_id>/history", HistoryList, query=HistoryQuery)
def daemon_history(daemon_id: uuid.UUID, query: HistoryQuery):
    """What a daemon did with jobs, newest first, with each job's type and status."""
    return {"history": daemon_queries.get_history(daemon_id, **query.model_dump(exclude_none=True))}


@route("POST /daemons/start-all", BulkResult)
def start_all():
    """Start every enabled daemon; per-daemon failures are listed in ``errors``."""
    return daemon_control.start_all()


@route("POST /daemons/stop-all", BulkResult)
def stop_all():
    """Stop every daemon; per-daemon failures are listed in ``errors``."""
    return daemon_control.stop_all()


@route("POST /daemons/restart-all", BulkResult)
def restart_all():
    """Restart every enabled daemon that should be running."""
    return daemon_control.restart_all()
