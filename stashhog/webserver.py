"""How the web process is served: gunicorn settings (``gunicorn -c python:stashhog.webserver``)
and the worker class they name.

The worker is gunicorn's gevent worker: an open WebSocket or a client that sends its request
slowly holds a greenlet, not one of a fixed number of threads, so open panels cannot starve
pages and API calls (ARCHITECTURE §6: with gthread, 32 open sockets did). psycopg2 is made
cooperative (psycogreen) right after gevent patches the standard library, so a database query
waits without blocking the other greenlets.

The worker also answers the errors gunicorn handles itself (an over-long request line, too
many headers, a malformed request) in the API's JSON error shape instead of gunicorn's HTML.
"""

from __future__ import annotations

import json

from gunicorn.http import errors as http_errors
from gunicorn.util import write_nonblock
from gunicorn.workers.ggevent import GeventWorker

# gunicorn settings, read by ``-c python:stashhog.webserver``; the Procfile adds bind and
# worker count from PORT and WEB_WORKERS.
worker_class = "stashhog.webserver.Worker"
# Open connections (sockets, keep-alive clients, slow senders) one web process holds. The
# relay refuses WebSockets beyond MAX_WEBSOCKETS first, so pages always have room.
worker_connections = 1000
keepalive = 5
graceful_timeout = 5
accesslog = "-"
access_log_format = '%(t)s %(h)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s"'
# The application's loggers (stashhog.*, celery's client side) get gunicorn's format: a
# timestamp, the pid and the level on every line.
LINE_FORMAT = "%(asctime)s [%(process)d] [%(levelname)s] %(name)s: %(message)s"
STDOUT = "ext://sys.stdout"
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "root": {"level": "INFO", "handlers": ["console"]},
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": ["console"], "propagate": False},
        "gunicorn.access": {"level": "INFO", "handlers": ["access"], "propagate": False},
        "alembic": {"level": "WARNING"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "line", "stream": STDOUT},
        "access": {"class": "logging.StreamHandler", "formatter": "bare", "stream": STDOUT},
    },
    "formatters": {
        "line": {"format": LINE_FORMAT, "datefmt": "[%Y-%m-%d %H:%M:%S %z]"},
        "bare": {"format": "%(message)s"},  # the access line carries its own timestamp
    },
}
control_socket_disable = True

CLIENT_ERRORS: dict[type[Exception], tuple[int, str]] = {
    http_errors.LimitRequestLine: (414, "uri_too_long"),
    http_errors.LimitRequestHeaders: (431, "request_header_fields_too_large"),
    http_errors.UnsupportedTransferCoding: (501, "not_implemented"),
    http_errors.ExpectationFailed: (417, "expectation_failed"),
    http_errors.ForbiddenProxyRequest: (403, "forbidden"),
}
# Faults of the application or the configuration, not the client: gunicorn's 500 stays.
SERVER_FAULTS = (
    http_errors.InvalidResponseHeader,
    http_errors.InvalidResponseHeaderName,
    http_errors.ConfigurationProblem,
)


class Worker(GeventWorker):
    """gunicorn's gevent worker with cooperative psycopg2 and JSON error responses."""

    def patch(self) -> None:
        super().patch()
        from psycogreen.gevent import patch_psycopg

        patch_psycopg()

    def handle_error(self, req, client, addr, exc) -> None:
        status, code = error_status(exc)
        if status is None:
            super().handle_error(req, client, addr, exc)
            return
        self.log.warning("invalid request from %s: %s", (addr or ("",))[0], exc)
        try:
            write_nonblock(client, json_error(status, code, str(exc) or code))
        except Exception:
            self.log.debug("could not send the error response")


def error_status(exc: Exception) -> tuple[int | None, str]:
    """The status and code for an error gunicorn answers itself; None for the rest."""
    for kind, answer in CLIENT_ERRORS.items():
        if isinstance(exc, kind):
            return answer
    if isinstance(exc, http_errors.ParseException) and not isinstance(exc, SERVER_FAULTS):
        return 400, "bad_request"
    return None, ""


def json_error(status: int, code: str, message: str) -> bytes:
    body = json.dumps({"error": {"code": code, "message": message[:200]}}).encode()
    head = (
        f"HTTP/1.1 {status} {code.replace('_', ' ').title()}\r\n"
        "Connection: close\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body
