"""``URL_PREFIX``: the whole panel (pages, API, WebSocket, static files) under one path, e.g.
``/daemons-panel``, behind a reverse proxy that forwards that path as it is (it does not strip
the prefix).

A WSGI middleware moves the prefix from ``PATH_INFO`` to ``SCRIPT_NAME``, so routing sees the
usual paths and ``url_for`` (and ``request.script_root``, which the pages hand to their
scripts) builds prefixed URLs everywhere. A path outside the prefix is not served: ``/``
redirects to the prefix, anything else is a 404. The session cookie is scoped to the prefix,
so two installs on one host (under different prefixes) do not share a sign-in.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable

from flask import Flask

# A path of plain segments: letters, digits and ``-._~`` (no query, fragment or dot segment).
PREFIX = re.compile(r"(/[A-Za-z0-9_~-][A-Za-z0-9._~-]*)+")


def normalise_prefix(raw: str) -> str:
    """``"daemons-panel/"`` -> ``"/daemons-panel"``; ``""`` and ``"/"`` -> ``""``."""
    prefix = "/" + raw.strip().strip("/")
    if prefix == "/":
        return ""
    if not PREFIX.fullmatch(prefix) or "/." in prefix:
        raise ValueError(
            f"URL_PREFIX must be a path such as /daemons-panel (segments of letters, digits"
            f" and -._~), not {raw!r}"
        )
    return prefix


class PrefixMiddleware:
    """Serves ``app`` under ``prefix`` only; everything else is a redirect (``/``) or a 404."""

    def __init__(self, app: Callable, prefix: str) -> None:
        self.app = app
        self.prefix = prefix

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == self.prefix or path.startswith(self.prefix + "/"):
            environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + self.prefix
            environ["PATH_INFO"] = path[len(self.prefix) :] or "/"
            return self.app(environ, start_response)
        if path in ("", "/"):
            location = environ.get("SCRIPT_NAME", "") + self.prefix + "/"
            start_response("302 Found", [("Location", location), ("Content-Length", "0")])
            return [b""]
        message = f"not found: this panel is served under {self.prefix}/"
        body = json.dumps({"error": {"code": "not_found", "message": message}}).encode()
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        start_response("404 Not Found", headers)
        return [body]


def init_app(app: Flask) -> None:
    prefix = normalise_prefix(app.config["URL_PREFIX"])
    app.config["URL_PREFIX"] = prefix
    if not prefix:
        return
    # Not APPLICATION_ROOT: Flask's test client would then send requests already split, where
    # a server sends the whole path; the middleware alone sets SCRIPT_NAME.
    if not app.config.get("SESSION_COOKIE_PATH"):
        app.config["SESSION_COOKIE_PATH"] = prefix
    app.wsgi_app = PrefixMiddleware(app.wsgi_app, prefix)
