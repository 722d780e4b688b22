"""The operator's control panel: Jinja pages that load from the REST API and then update live
over ``WS /api/daemons/ws``. Each page group is a module; templates mirror them."""

from flask import Blueprint, Flask, redirect, render_template, url_for

bp = Blueprint("web", __name__)


@bp.get("/")
def index():
    return redirect(url_for("web.daemon_list"))


def not_found(message: str):
    return render_template("errors/not_found.html", message=message), 404


from stashhog.media import pages as media_pages  # noqa: E402,F401
from stashhog.observability import pages as observability_pages  # noqa: E402,F401
from stashhog.web import daemons, jobs, prefix  # noqa: E402,F401  (pages register on bp)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    prefix.init_app(app)
