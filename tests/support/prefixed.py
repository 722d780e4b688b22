"""An app on the session's database, Redis and workers, served under a URL prefix (the
session's ``app`` serves the root)."""

from __future__ import annotations

from stashhog import create_app
from tests.support import services
from tests.support.access import ensure_user, username_for


def prefixed_app(app, database_url: str, redis_url: str, redis_prefix: str, prefix: str):
    """A second app like ``app`` with ``URL_PREFIX=prefix``, and an operator to sign in as."""
    prefixed = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": services.TEST_SECRET_KEY,
            "SQLALCHEMY_DATABASE_URI": database_url,
            "REDIS_URL": redis_url,
            "REDIS_PREFIX": redis_prefix,
            "DAEMON_MODULES": app.config["DAEMON_MODULES"],
            "URL_PREFIX": prefix,
        }
    )
    app.extensions["celery"].set_default()  # create_app made the new app's Celery the default
    with prefixed.app_context():
        ensure_user(username_for("operator"), "operator")
    return prefixed
