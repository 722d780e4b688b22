"""The JSON API under ``/api``: one blueprint, one error shape, one OpenAPI document."""

from flask import Blueprint, Flask

bp = Blueprint("api", __name__, url_prefix="/api")

# Routes register on bp as their modules are imported.
from stashhog.api import catalog, daemons, dependencies, errors, health, jobs, openapi  # noqa: E402,F401
from stashhog.auth import api as auth_api  # noqa: E402,F401  (audit, session, users, tokens)
from stashhog.media import api as media_api  # noqa: E402,F401
from stashhog.observability import api as observability_api  # noqa: E402,F401


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    errors.register_errorhandlers(app)
