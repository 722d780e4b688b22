"""``flask daemons …``: operate daemons from a shell.

Every command takes a daemon's name or id, prints aligned tables (or JSON with ``--json``) on
stdout, and reports errors as one line on stderr with a non-zero exit code.
"""

from __future__ import annotations

from flask import Flask
from flask.cli import AppGroup

from stashhog.auth.actor import use_cli_actor

# Commands act as the local OS user (cli:<user>) in the audit trail.
daemons_cli = AppGroup("daemons", help="Operate StashHog daemons.", callback=use_cli_actor)

# The command modules register on daemons_cli as they are imported.

from stashhog.cli import catalog, daemons, dependencies, logs, supervision  # noqa: E402,F401
from stashhog.observability import cli as observability_cli  # noqa: E402,F401


def init_app(app: Flask) -> None:
    app.cli.add_command(daemons_cli)
