"""``logs``: a daemon's log lines, oldest first; ``--follow`` keeps printing new ones."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import click

from stashhog.cli import daemons_cli
from stashhog.cli.follow import LogFollower
from stashhog.cli.output import emit_json, format_time, json_option, reports_errors
from stashhog.models import LogLevel
from stashhog.services import daemon_queries

LEVELS = click.Choice([level.value for level in LogLevel], case_sensitive=False)


class Timestamp(click.ParamType):
    """An ISO 8601 timestamp; one without a zone is taken as UTC."""

    name = "ISO"

    def convert(self, value, param, ctx) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            self.fail(f"{value!r} is not an ISO 8601 timestamp", param, ctx)
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@daemons_cli.command("logs")
@click.argument("ref", metavar="NAME_OR_ID")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines; Ctrl-C to stop.")
@click.option("--level", type=LEVELS, help="Only lines at LEVEL or more severe.")
@click.option(
    "--limit", type=click.IntRange(1, 1000), default=100, show_default=True,
    help="Show the latest N lines.",
)  # fmt: skip
@click.option("--since", type=Timestamp(), help="Only lines written at or after this time.")
@click.option(
    "--grep",
    "grep",
    metavar="QUERY",
    help='Only lines matching: words, "quoted phrases", -excluded (as the API\'s q).',
)
@click.option("--generation", type=int, help="Only the lines of this run.")
@json_option
@reports_errors
def logs_command(
    ref: str, follow: bool, level: str | None, limit: int, since: datetime | None,
    grep: str | None, generation: int | None, as_json: bool,
) -> None:  # fmt: skip
    """Print a daemon's latest log lines, oldest first.

    With --json: a JSON array, or with --follow one JSON object per line."""
    if follow:
        if grep or generation is not None:
            raise click.UsageError("--follow takes neither --grep nor --generation")
        follow_logs(ref, level, since, limit, as_json)
        return
    lines = daemon_queries.get_logs(ref, level=level, since=since, limit=limit, q=grep,
                                    generation=generation)  # fmt: skip
    lines.reverse()
    if as_json:
        return emit_json(lines)
    for line in lines:
        print_line(line)


def follow_logs(
    ref: str, level: str | None, since: datetime | None, limit: int, as_json: bool
) -> None:
    """The latest lines, then every new one as it is written, until Ctrl-C (exit 0)."""
    daemon_id = daemon_queries.get_daemon(ref)["id"]
    follower = LogFollower(daemon_id, level, print_json_line if as_json else print_line)
    try:
        follower.show_latest(since, limit)
        follower.follow()
    except KeyboardInterrupt:
        pass


def format_line(line: dict) -> str:
    """``TIME  LEVEL    message``; the lines of a multi-line message stay under its first."""
    prefix = f"{format_time(line['created_at'], 'milliseconds')}  {line['level']:<7}  "
    return prefix + line["message"].replace("\n", "\n" + " " * len(prefix))


def print_line(line: dict) -> None:
    click.echo(format_line(line))


def print_json_line(line: dict) -> None:
    click.echo(json.dumps(line, default=str))
