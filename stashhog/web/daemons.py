"""Daemon pages: the list of cards and one daemon's logs, configuration and job history."""

import uuid

from flask import render_template

from stashhog.errors import NotFound
from stashhog.services.daemon_queries import get_daemon
from stashhog.web import bp, not_found


@bp.get("/daemons")
def daemon_list():
    return render_template("daemons/list.html")


@bp.get("/daemons/new")
def daemon_new():
    return render_template("daemons/new.html")


@bp.get("/daemons/<uuid:daemon_id>")
def daemon_detail(daemon_id: uuid.UUID):
    try:
        daemon = get_daemon(daemon_id)
    except NotFound:
        return not_found(f"There is no daemon with id {daemon_id}.")
    return render_template("daemons/detail.html", daemon=daemon)
