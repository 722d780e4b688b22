"""StashHog Daemons: supervised, long-running background processes on Celery and Flask."""

from __future__ import annotations

from flask import Flask

from stashhog.config import load_config, require_secret_key


def create_app(test_config: dict | None = None) -> Flask:
    """Application factory: configuration, then each part's ``init_app``."""
    app = Flask(__name__, template_folder="../templates", static_folder="../static")
    settings = load_config(overrides=test_config)
    require_secret_key(settings)
    app.config.from_mapping(settings)

    from stashhog import api, auth, celery_app, cli, daemons, database, events, relay, web

    daemons.init_app(app)
    database.init_app(app)
    events.init_app(app)
    celery_app.init_app(app)
    auth.init_app(app)  # first of the request hooks: the access policy runs before the rest
    api.init_app(app)
    relay.init_app(app)
    web.init_app(app)
    cli.init_app(app)
    return app
