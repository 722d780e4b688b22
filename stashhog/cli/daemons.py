"""``list``, ``start``, ``stop``, ``restart``, ``history`` and ``health``."""

from __future__ import annotations

from collections.abc import Collection

import click

from stashhog.cli import daemons_cli
from stashhog.cli.output import (
    emit_json,
    fail,
    format_duration,
    format_time,
    json_option,
    print_table,
    reports_errors,
    wait_option,
)
from stashhog.models import DaemonJobAction, DaemonStatus
from stashhog.models.enums import STOPPED_STATES
from stashhog.services import daemon_control, daemon_queries

ref_argument = click.argument("ref", metavar="NAME_OR_ID")
ACTIONS = click.Choice([action.value for action in DaemonJobAction], case_sensitive=False)


@daemons_cli.command("list")
@json_option
@reports_errors
def list_command(as_json: bool) -> None:
    """List every daemon with its status and health."""
    daemons = daemon_queries.list_daemons()
    if as_json:
        return emit_json(daemons)
    print_table(
        ("NAME", "TYPE", "STATUS", "HEALTH", "ENABLED", "UPTIME", "ID"),
        [
            (d["name"], d["type"], d["status"], d["health"], d["enabled"],
             format_duration(d["uptime_seconds"]), d["id"])
            for d in daemons
        ],
    )  # fmt: skip


@daemons_cli.command("start")
@ref_argument
@wait_option("Wait until the daemon is RUNNING, up to SECONDS (default 30); exit 1 if not.")
@json_option
@reports_errors
def start_command(ref: str, wait: float, as_json: bool) -> None:
    """Start a daemon, after what it depends on (nothing happens if it is already
    running)."""
    result = daemon_control.start_daemon(ref, wait=wait)
    report(result, as_json, wanted={DaemonStatus.RUNNING} if wait else None)


@daemons_cli.command("stop")
@ref_argument
@wait_option("Wait until the daemon has stopped, up to SECONDS (default 30); exit 1 if not.")
@click.option(
    "--cascade/--no-cascade", default=True, show_default=True,
    help="Stop the daemons that depend on it first; --no-cascade refuses while any is up.",
)  # fmt: skip
@json_option
@reports_errors
def stop_command(ref: str, wait: float, cascade: bool, as_json: bool) -> None:
    """Stop a daemon, after the daemons that depend on it (nothing happens if it is already
    stopped)."""
    result = daemon_control.stop_daemon(ref, wait=wait, cascade=cascade)
    report(result, as_json, wanted=STOPPED_STATES if wait else None)


@daemons_cli.command("restart")
@ref_argument
@wait_option("Wait until the daemon is RUNNING again, up to SECONDS (default 30).")
@json_option
@reports_errors
def restart_command(ref: str, wait: float, as_json: bool) -> None:
    """Stop a daemon, then start it with its stored configuration."""
    result = daemon_control.restart_daemon(ref, wait=wait)
    report(result, as_json, wanted={DaemonStatus.RUNNING} if wait else None)


DEPENDENCY_STEPS = {
    "dependents_stopped": "stopped first",
    "dependencies_started": "started first",
    "dependents_restarted": "start again once it is ready",
}


def report(result: dict, as_json: bool, wanted: Collection[str] | None) -> None:
    """Print a start/stop result; fail when a waited-for status was not reached."""
    daemon = result["daemon"]
    if as_json:
        emit_json(result)
    else:
        for field, done in DEPENDENCY_STEPS.items():
            if result.get(field):
                click.echo(f"{done}: {', '.join(result[field])}")
        click.echo(f"{daemon['name']}: {result['message']} (status {daemon['status']})")
    if wanted and daemon["status"] not in wanted:
        if daemon["status"] == DaemonStatus.ERROR:
            fail(f"daemon {daemon['name']!r} failed: {daemon['last_error'] or 'no error recorded'}")
        fail(f"daemon {daemon['name']!r} is still {daemon['status']} after waiting")


@daemons_cli.command("history")
@ref_argument
@click.option(
    "--limit", type=click.IntRange(1, 1000), default=50, show_default=True,
    help="Show the latest N entries.",
)  # fmt: skip
@click.option("--action", type=ACTIONS, help="Only entries with this action.")
@json_option
@reports_errors
def history_command(ref: str, limit: int, action: str | None, as_json: bool) -> None:
    """What a daemon did with jobs, oldest first."""
    entries = daemon_queries.get_history(ref, action=action, limit=limit)
    entries.reverse()
    if as_json:
        return emit_json(entries)
    print_table(
        ("TIME", "ACTION", "JOB", "JOB TYPE", "JOB STATUS", "REASON"),
        [
            (format_time(e["created_at"]), e["action"], e["job_id"], e.get("job_type"),
             e.get("job_status"), e["reason"])
            for e in entries
        ],
    )  # fmt: skip


@daemons_cli.command("health")
@json_option
@reports_errors
def health_command(as_json: bool) -> None:
    """Each daemon's health; exits 1 when any daemon is unhealthy."""
    report = daemon_queries.health_report()
    if as_json:
        emit_json(report)
    else:
        print_table(
            ("NAME", "STATUS", "HEALTH", "UPTIME", "LAST HEARTBEAT", "REASON"),
            [
                (d["name"], d["status"], group, format_duration(d.get("uptime_seconds")),
                 format_time(d["last_heartbeat"]), d.get("reason"))
                for group in ("unhealthy", "healthy", "stopped")
                for d in report[group]
            ],
        )  # fmt: skip
    if report["unhealthy"]:
        names = ", ".join(d["name"] for d in report["unhealthy"])
        fail(f"{len(report['unhealthy'])} unhealthy: {names}")
