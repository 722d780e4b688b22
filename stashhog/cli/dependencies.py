"""``deps``, and the ``--depends-on`` options of ``create`` and ``set``: what needs what."""

from __future__ import annotations

from typing import Any

import click

from stashhog.cli import daemons_cli
from stashhog.cli.output import emit_json, json_option, print_table, reports_errors
from stashhog.errors import Invalid
from stashhog.services import daemon_dependencies


def dependency_options(command):
    """``--depends-on NAME_OR_ID`` (repeated: the whole list) and ``--no-depends-on``."""
    for option in (
        click.option("--no-depends-on", is_flag=True, help="It depends on no daemon."),
        click.option(
            "--depends-on", multiple=True, metavar="NAME_OR_ID",
            help="A daemon it needs: started (and heartbeating) before it, stopped after it. "
            "Repeat for each; the list replaces the one it had.",
        ),
    ):  # fmt: skip
        command = option(command)
    return command


def dependencies_given(options: dict[str, Any]) -> list[str] | None:
    """Take the two options out of ``options``: the list given, [] for none, or None (not
    given: unchanged). Names are taken as they are; the service resolves them to ids."""
    named, none = list(options.pop("depends_on", ())), options.pop("no_depends_on", False)
    if named and none:
        raise Invalid("--depends-on and --no-depends-on together", key="depends_on")
    return [] if none else named or None


@daemons_cli.command("deps")
@json_option
@reports_errors
def deps_command(as_json: bool) -> None:
    """Every daemon in start order, with what it needs and what needs it."""
    graph = daemon_dependencies.describe_graph()
    if as_json:
        return emit_json(graph)
    names = lambda refs: ", ".join(ref["name"] for ref in refs) or "-"  # noqa: E731
    print_table(
        ("ORDER", "NAME", "STATUS", "NEEDS", "NEEDED BY"),
        [
            (number, d["name"], d["status"], names(d["needs"]), names(d["needed_by"]))
            for number, d in enumerate(graph["daemons"], start=1)
        ],
    )
