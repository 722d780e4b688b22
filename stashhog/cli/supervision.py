"""``boot`` and ``reconcile``: the supervisor's actions, run by hand."""

from __future__ import annotations

import click

from stashhog.cli import daemons_cli
from stashhog.cli.output import emit_json, json_option, reports_errors
from stashhog.services import supervisor


@daemons_cli.command("boot")
@json_option
@reports_errors
def boot_command(as_json: bool) -> None:
    """Cluster start: give every enabled auto-start daemon desired state RUNNING."""
    count = supervisor.boot()
    if as_json:
        emit_json({"auto_started": count})
    else:
        click.echo(f"{count} auto-start daemon(s) set to RUNNING; the supervisor starts them")


@daemons_cli.command("reconcile")
@json_option
@reports_errors
def reconcile_command(as_json: bool) -> None:
    """Run one supervision pass now and print what it did."""
    report = supervisor.reconcile()
    actions = report.actions if report else []
    if as_json:
        emit_json({"ran": report is not None, "actions": actions})
    elif report is None:
        click.echo("another supervision pass is running; nothing done")
    else:
        click.echo("\n".join(actions) or "nothing to do")
