"""Shaping command output: JSON and aligned tables on stdout, one-line errors on stderr."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, NoReturn

import click
import redis
from sqlalchemy.exc import OperationalError

from stashhog.errors import NotFound, StashHogError

# Click's own usage errors exit 2 too: "you named something that is not there".
NOT_FOUND_EXIT = 2
FAILURE_EXIT = 1

json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print machine-readable JSON on stdout."
)


def wait_option(help: str) -> Callable:
    """``--wait`` alone waits up to 30 s; ``--wait SECONDS`` sets the limit."""
    return click.option(
        "--wait",
        type=click.FloatRange(min=0),
        is_flag=False,
        flag_value=30.0,
        default=0.0,
        metavar="[SECONDS]",
        help=help,
    )


def fail(message: str, code: int = FAILURE_EXIT) -> NoReturn:
    """Print ``error: message`` as one line on stderr and exit with ``code``."""
    click.echo(f"error: {' '.join(message.split())}", err=True)
    click.get_current_context().exit(code)


def reports_errors(command: Callable) -> Callable:
    """Turn service and connection errors into ``fail()``: a message, not a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except StashHogError as exc:
            fail(exc.message, NOT_FOUND_EXIT if isinstance(exc, NotFound) else FAILURE_EXIT)
        except redis.RedisError as exc:
            fail(f"Redis error: {exc}")
        except OperationalError as exc:
            fail(f"database error: {exc.orig or exc}")

    return wrapper


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def print_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Columns padded to their widest cell; the last column is not padded."""
    cells = [[cell_text(value) for value in row] for row in rows]
    widths = [
        max([len(header), *(len(row[i]) for row in cells)]) for i, header in enumerate(headers)
    ]
    for row in [list(headers), *cells]:
        padded = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        click.echo("  ".join(padded).rstrip())


def cell_text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return " ".join(str(value).split())


def format_time(value: str | None, timespec: str = "seconds") -> str:
    """An ISO timestamp from the API as UTC, e.g. ``2025-01-31T09:15:02Z``."""
    if not value:
        return "-"
    moment = datetime.fromisoformat(value).astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat(timespec=timespec) + "Z"


def format_duration(seconds: float | None) -> str:
    """Two units at most: ``3d 4h``, ``5m 02s``, ``42s``."""
    if seconds is None:
        return "-"
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"
