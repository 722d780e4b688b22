"""The login blueprint: ``/login``, ``/logout``, and the Activity page (the audit trail).

A failed login says the same for an unknown user and a wrong password, and counts against a
limit per client address and per username, kept in Redis so it holds across web processes.
Only failures count, so a user who signs in often is never slowed down.
"""

from __future__ import annotations

from flask import (
    Blueprint,
    Flask,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_limiter import Limiter
from flask_login import login_user, logout_user
from flask_wtf.csrf import CSRFError

from stashhog.auth import audit
from stashhog.auth.actor import request_actor
from stashhog.auth.roles import Role, require
from stashhog.auth.users import authenticate
from stashhog.extensions import csrf

bp = Blueprint("auth", __name__)
LOGIN_FAILED = "Unknown user or wrong password."


def login_limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


def _failed_login(response) -> bool:
    return response.status_code == 401


def _username_key() -> str:
    return "user:" + request.form.get("username", "")[:100]


def limit_logins(app: Flask, limiter: Limiter) -> None:
    """Limit the app's login view with its own limiter (one per app: a Limiter keeps one
    storage, so a second app bound to the same one would count in the other's Redis)."""
    view = app.view_functions["auth.login"]
    for key_func in (None, _username_key):
        view = limiter.limit(login_limit, methods=["POST"], key_func=key_func,
                             deduct_when=_failed_login)(view)  # fmt: skip
    app.view_functions["auth.login"] = view


@bp.route("/login", methods=["GET", "POST"])
def login():
    next_url = safe_next(request.values.get("next"))
    if request.method == "GET":
        return render_template("auth/login.html", next=next_url)
    try:
        csrf.protect()
    except CSRFError:
        return render_template("auth/login.html", next=next_url,
                               error="The form expired; please sign in again."), 403  # fmt: skip
    username = request.form.get("username", "").strip()
    user = authenticate(username, request.form.get("password", ""))
    entry = audit.Entry("login", "user", name=username[:100])
    if user is None:
        audit.record(entry, "failed", LOGIN_FAILED, actor=request_actor(name=username[:100]))
        return render_template("auth/login.html", next=next_url, error=LOGIN_FAILED,
                               username=username), 401  # fmt: skip
    session.clear()  # a fresh session (and CSRF token) for the signed-in user: no fixation
    login_user(user)
    session.permanent = True
    entry.target(user.id, user.username)
    audit.record(entry, "ok", actor=request_actor(name=user.username, role=Role(user.role),
                                                  user_id=user.id, via="session"))  # fmt: skip
    return redirect(next_url or url_for("web.index"))


@bp.errorhandler(429)
def too_many_attempts(_err):
    message = "Too many failed sign-ins; wait a minute and try again."
    return render_template("auth/login.html", error=message, next=None), 429


@bp.post("/logout")
@require(Role.VIEWER)
def logout():
    audit.record(audit.Entry("logout", "user", id=g.actor.user_id, name=g.actor.name), "ok")
    logout_user()
    session.clear()
    return redirect(url_for("auth.login"))


@bp.get("/activity")
def activity():
    return render_template("auth/activity.html")


def safe_next(target: str | None) -> str | None:
    """Only a path on this site: never an absolute URL (an open redirect) or ``//host``, and
    under URL_PREFIX only a path under it (not another application on the same host)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return None
    root = request.script_root
    if root and target != root and not target.startswith(root + "/"):
        return None
    return target
