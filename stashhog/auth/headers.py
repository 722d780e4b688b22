"""What every response carries and every request is checked for, below the policy: security
headers, the ``Host`` check, the session cookie's flags, and the proxies trusted to say who
the client is.

The Content-Security-Policy allows scripts, styles and connections (the WebSocket included)
only from the panel's own origin: no inline script, no ``eval``, and no framing by anyone
(clickjacking). ``TRUSTED_HOSTS`` (Flask's own check) answers a foreign ``Host`` with 400,
which stops DNS rebinding against a panel on loopback.
"""

from __future__ import annotations

from flask import Flask, Response, request
from flask.sessions import SecureCookieSessionInterface
from werkzeug.middleware.proxy_fix import ProxyFix

from stashhog.config import InsecureConfiguration

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "manifest-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def add_security_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


class SessionInterface(SecureCookieSessionInterface):
    """The session cookie is ``Secure`` whenever the request came over HTTPS (directly, or
    as a trusted proxy says), not only when ``SESSION_COOKIE_SECURE`` forces it."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return super().get_cookie_secure(app) or request.is_secure


def init_app(app: Flask) -> None:
    if not app.config["TRUSTED_HOSTS"]:
        # Flask would then answer any Host at all.
        raise InsecureConfiguration("TRUSTED_HOSTS is empty: name the hosts the panel answers")
    app.after_request(add_security_headers)
    app.session_interface = SessionInterface()
    hops = app.config["PROXY_HOPS"]
    if hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
