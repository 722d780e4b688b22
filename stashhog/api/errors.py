"""Every API error is ``{"error": {"code": ..., "message": ...}}`` with a fitting status.

Services, the registries and request parsing raise ``stashhog.errors`` errors, each carrying
its status, code and offending key; a broker or database that cannot be reached is 503.
Anything else is logged and answered with a bare 500: never a traceback.
"""

from __future__ import annotations

import kombu.exceptions
import redis
import sqlalchemy.exc
from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException

from stashhog.errors import StashHogError

# Failures of a dependency rather than of the request.
UNAVAILABLE = (
    redis.RedisError,
    kombu.exceptions.OperationalError,
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.TimeoutError,
)


def error_response(status: int, code: str, message: str, **details: object):
    body = {"error": {"code": code, "message": message, **details}}
    return jsonify(body), status


def register_errorhandlers(app: Flask) -> None:
    @app.errorhandler(StashHogError)
    def handle_error(err: StashHogError):
        return jsonify({"error": err.to_dict()}), err.status

    @app.errorhandler(HTTPException)
    def handle_http_error(err: HTTPException):
        if not request.path.startswith("/api"):
            return err
        code = (err.name or "error").lower().replace(" ", "_")
        response, status = error_response(err.code or 500, code, err.description or err.name)
        # Keep what the exception says about the request, e.g. Allow on 405.
        for name, value in err.get_headers():
            if name.lower() != "content-type":
                response.headers[name] = value
        return response, status

    @app.errorhandler(Exception)
    def handle_unexpected(err: Exception):
        if isinstance(err, UNAVAILABLE):
            _discard_session()
            app.logger.warning("dependency unavailable on %s: %r", request.path, err)
            return error_response(
                503, "unavailable", f"a dependency is unavailable: {type(err).__name__}"
            )
        app.logger.exception("unhandled error on %s", request.path)
        return error_response(500, "internal_error", "Internal server error")


def _discard_session() -> None:
    from stashhog.extensions import db

    try:
        db.session.rollback()
    except Exception:
        db.session.close()
