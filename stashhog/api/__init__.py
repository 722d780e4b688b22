"""The JSON API under ``/api``: one blueprint, one error shape."""

from flask import Blueprint, Flask

bp = Blueprint("api", __name__, url_prefix="/api")

from stashhog.api import errors, health  # noqa: E402,F401  (routes register on bp)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    errors.register_errorhandlers(app)
