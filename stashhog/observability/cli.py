"""``flask daemons prune``: one retention pass now."""

from __future__ import annotations

import click

from stashhog.cli import daemons_cli
from stashhog.cli.output import emit_json, json_option, reports_errors
from stashhog.observability import retention


@daemons_cli.command("prune")
@click.option("--seconds", type=click.FloatRange(0.1, 3600), default=60, show_default=True,
              help="Stop after this long (the next pass goes on).")  # fmt: skip
@json_option
@reports_errors
def prune_command(seconds: float, as_json: bool) -> None:
    """Prune logs, jobs, runs, alerts and metrics past their retention, in small batches."""
    counts = retention.prune(budget=seconds)
    if as_json:
        return emit_json({"ran": counts is not None, "pruned": dict(counts or {})})
    if counts is None:
        click.echo("another retention pass is running; nothing done")
        return
    pruned = {name: count for name, count in counts.items() if count}
    click.echo("\n".join(f"{name}: {count} pruned" for name, count in pruned.items())
               or "nothing to prune")  # fmt: skip
