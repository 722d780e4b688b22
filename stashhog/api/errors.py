"""Every API error is ``{"error": {"code": ..., "message": ...}}`` with a fitting status."""

from __future__ import annotations

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException


class ApiError(Exception):
    """Raised by services and routes; becomes an error response."""

    def __init__(self, status: int, code: str, message: str, **details: object) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details


def error_response(status: int, code: str, message: str, **details: object):
    body = {"error": {"code": code, "message": message, **details}}
    return jsonify(body), status


def register_errorhandlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def handle_api_error(err: ApiError):
        return error_response(err.status, err.code, err.message, **err.details)

    @app.errorhandler(HTTPException)
    def handle_http_error(err: HTTPException):
        if not request.path.startswith("/api"):
            return err
        code = (err.name or "error").lower().replace(" ", "_")
        return error_response(err.code or 500, code, err.description or err.name)

    @app.errorhandler(Exception)
    def handle_unexpected(err: Exception):
        app.logger.exception("unhandled error on %s", request.path)
        return error_response(500, "internal_error", "Internal server error")
