"""Who may use the panel: users with roles, API tokens, the login pages, the one access
policy every request passes (``policy``), security headers, and the audit trail.

``init_app`` must run before any other part adds a ``before_request`` hook, so that the
policy refuses a request before anything else (a WebSocket's slot, say) acts on it.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    # Imported here: stashhog.models imports auth.models, so this package stays light.
    from flask_limiter import Limiter
    from flask_limiter.util import get_remote_address

    from stashhog.auth import cli, headers, policy, views
    from stashhog.auth.actor import current_actor
    from stashhog.auth.users import load_session_user
    from stashhog.extensions import csrf, login_manager

    # CSRF is checked by the policy, only for cookie-carried requests (not for tokens).
    app.config.update(WTF_CSRF_CHECK_DEFAULT=False, WTF_CSRF_TIME_LIMIT=None)
    app.config.setdefault("RATELIMIT_STORAGE_URI", app.config["REDIS_URL"])
    app.config.setdefault("RATELIMIT_KEY_PREFIX", f"{app.config['REDIS_PREFIX']}:ratelimit")
    app.config.setdefault("RATELIMIT_HEADERS_ENABLED", True)
    app.config.setdefault("RATELIMIT_STRATEGY", "moving-window")  # no reset at a boundary
    headers.init_app(app)
    policy.init_app(app)
    login_manager.init_app(app)
    login_manager.user_loader(load_session_user)
    csrf.init_app(app)
    # Nothing is limited by default; the login view declares its limit.
    limiter = Limiter(get_remote_address)
    limiter.init_app(app)
    app.register_blueprint(views.bp)
    views.limit_logins(app, limiter)
    app.context_processor(lambda: {"actor": current_actor()})
    cli.init_app(app)
