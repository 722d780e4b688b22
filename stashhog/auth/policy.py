"""Deny by default: one check before every request decides who may do what.

Only ``OPEN_ENDPOINTS`` answer without credentials. Every other endpoint needs a role:
``viewer`` to read (GET, HEAD, OPTIONS), ``operator`` for any other method, or the role a
view declares with ``@require(role)`` (admin endpoints). A route added tomorrow is covered
the day it is added, because nothing here lists the protected ones.

Credentials are an ``Authorization: Bearer`` token or the session cookie. A request carried
by the cookie also needs, for a state change, the CSRF token (``X-CSRF-Token`` header or
``csrf_token`` form field; bodyless POSTs included, so a cross-site form cannot stop
anything) and, on the API, a JSON body; and the WebSocket, and any cookie-carried state
change, is refused when an ``Origin`` header names another site. A token request needs no
CSRF token: a browser never adds one by itself.

Without credentials the API (and the socket) answer 401 in the one error shape, pages
redirect to the login page; a role too low is a 403, and recorded in the audit trail.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from flask import Flask, current_app, g, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf.csrf import CSRFError

from stashhog.api.errors import error_response
from stashhog.auth import audit
from stashhog.auth.actor import Actor, request_actor
from stashhog.auth.models import ApiToken, User
from stashhog.auth.roles import Role
from stashhog.auth.tokens import user_for_token
from stashhog.auth.users import access_session
from stashhog.extensions import csrf

OPEN_ENDPOINTS = frozenset({"static", "api.health", "api.health_live", "auth.login"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SOCKET_ENDPOINT = "__flask_sock.daemons_ws"


def required_role(endpoint: str, method: str) -> Role:
    view = current_app.view_functions.get(endpoint)
    declared = getattr(view, "required_role", None)
    if declared is not None:
        return declared
    return Role.VIEWER if method in SAFE_METHODS else Role.OPERATOR


def enforce():
    """The ``before_request`` hook: None lets the request through, a response refuses it."""
    endpoint = request.endpoint
    if endpoint is None or endpoint in OPEN_ENDPOINTS:
        return None  # a routing error (404, 405) reveals nothing worth guarding
    if endpoint == SOCKET_ENDPOINT and not origin_allowed():
        return refuse(403, "forbidden_origin", "the Origin header names another site")
    actor = authenticate()
    if actor is None:
        return unauthorized("the bearer token is unknown or revoked")
    if not actor.authenticated:
        return unauthorized("sign in, or send Authorization: Bearer <token>")
    g.actor = actor
    needed = required_role(endpoint, request.method)
    if not actor.role.allows(needed):
        return refuse(403, "forbidden", f"this needs the {needed} role; you are {actor.role}")
    if actor.via == "session" and request.method not in SAFE_METHODS:
        return check_browser_request()
    return None


def authenticate() -> Actor | None:
    """The request's actor: from its bearer token (None if the token is bad), else from its
    session cookie, else an anonymous actor. Both are read on a database session of their
    own (``users.access_session``), never the request's."""
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        found = user_for_token(credentials.strip())
        if found is None:
            return None
        user, token = found
        return request_actor(name=user.username, role=Role(user.role), user_id=user.id,
                             via="token", token_name=token.name, token_id=token.id)  # fmt: skip
    user = current_user._get_current_object()
    if not user.is_authenticated:
        return request_actor()
    return request_actor(name=user.username, role=Role(user.role), user_id=user.id,
                         via="session")  # fmt: skip


def still_allowed(actor: Actor, needed: Role) -> bool:
    """Whether ``actor``, authenticated earlier, still holds ``needed``: the user exists with
    a role that allows it, and the token (if it came with one) is not revoked."""
    with access_session() as session:
        user = session.get(User, actor.user_id) if actor.user_id else None
        token = session.get(ApiToken, actor.token_id) if actor.token_id else None
    if user is None or not Role(user.role).allows(needed):
        return False
    return actor.token_id is None or (token is not None and token.revoked_at is None)


def subscription_check(needed: Role = Role.VIEWER) -> Callable[[], bool]:
    """For a WebSocket's reader, which runs outside the request: may its actor still
    subscribe?"""
    app, actor = current_app._get_current_object(), g.actor

    def allowed() -> bool:
        with app.app_context():
            return still_allowed(actor, needed)

    return allowed


def check_browser_request():
    """A state change carried by the session cookie: same site, CSRF token, JSON body."""
    if not origin_allowed():
        return refuse(403, "forbidden_origin", "the Origin header names another site")
    try:
        csrf.protect()
    except CSRFError as exc:
        return refuse(403, "csrf_failed", f"CSRF check failed: {exc.description}")
    if request.path.startswith("/api/") and _has_body() and not request.is_json:
        return error_response(415, "unsupported_media_type", "the body must be application/json")
    return None


def _has_body() -> bool:
    return bool(request.content_length) or "chunked" in request.headers.get("Transfer-Encoding", "")


def origin_allowed() -> bool:
    """No Origin (not a browser), the panel's own origin, or one of ``ALLOWED_ORIGINS``."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    if origin.rstrip("/") in current_app.config["ALLOWED_ORIGINS"]:
        return True
    return urlsplit(origin).netloc.lower() == request.host.lower()


# Endpoints read by programs, not people: refused with 401 rather than sent to the login
# page (a Prometheus scrape without its token should fail as "unauthorized", not follow a 302).
MACHINE_ENDPOINTS = frozenset({SOCKET_ENDPOINT, "web.prometheus_metrics"})


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.endpoint in MACHINE_ENDPOINTS


def unauthorized(message: str):
    if not wants_json():
        # ``next`` is the path as the browser sees it: under URL_PREFIX, with the prefix.
        here = request.script_root + request.full_path.rstrip("?")
        return redirect(url_for("auth.login", next=here))
    response, status = error_response(401, "unauthorized", message)
    response.headers["WWW-Authenticate"] = 'Bearer realm="stashhog"'
    return response, status


def refuse(status: int, code: str, message: str):
    """A refusal of a known (or anonymous) actor; state changes refused are audited."""
    if request.method not in SAFE_METHODS or request.endpoint == SOCKET_ENDPOINT:
        entry = audit.Entry("access.denied", "endpoint", name=request.endpoint,
                            method=request.method, path=request.path[:200])  # fmt: skip
        audit.record(entry, "denied", message)
    if wants_json():
        return error_response(status, code, message)
    return render_template("errors/forbidden.html", message=message), status


def init_app(app: Flask) -> None:
    app.before_request(enforce)
