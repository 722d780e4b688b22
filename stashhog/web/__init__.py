"""The operator's control panel: Jinja pages that update live over the WebSocket."""

from flask import Blueprint, Flask, redirect, url_for

bp = Blueprint("web", __name__)


@bp.get("/")
def index():
    return redirect(url_for("web.daemons"))


@bp.get("/daemons")
def daemons():
    from flask import render_template

    return render_template("daemons/list.html")


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
