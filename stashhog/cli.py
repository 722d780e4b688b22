"""``flask daemons …``: operate daemons from a shell."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup

daemons_cli = AppGroup("daemons", help="Operate StashHog daemons.")


def init_app(app: Flask) -> None:
    app.cli.add_command(daemons_cli)


@daemons_cli.command("list")
def list_command() -> None:
    """List daemons with their status."""
    from stashhog.extensions import db
    from stashhog.models import Daemon

    for daemon in db.session.scalars(db.select(Daemon).order_by(Daemon.name)):
        click.echo(f"{daemon.id}  {daemon.name:<30} {daemon.type:<28} {daemon.status}")
