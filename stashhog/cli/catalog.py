"""``types``, ``create``, ``set`` and ``delete``: daemons from types, edited and removed."""

from __future__ import annotations

import json
from typing import Any

import click
from pydantic import ValidationError

from stashhog.cli import daemons_cli
from stashhog.cli.dependencies import dependencies_given, dependency_options
from stashhog.cli.output import emit_json, fail, json_option, print_table, reports_errors
from stashhog.errors import Invalid
from stashhog.models import LimitAction, RestartPolicy
from stashhog.services import daemon_catalog, daemon_configuration, daemon_control, daemon_queries
from stashhog.services.daemon_catalog import DaemonSettings

POLICIES = click.Choice([policy.value for policy in RestartPolicy])
LIMIT_ACTIONS = click.Choice([action.value for action in LimitAction])
set_option = click.option(
    "--set",
    "assignments",
    multiple=True,
    metavar="KEY=VALUE",
    help='A configuration key; VALUE is read as JSON (5, true, ["a"]) or else as text.',
)
config_option = click.option(
    "--config", "config_json", metavar="JSON", help="Configuration keys as one JSON object."
)


def restart_options(command):
    """The restart policy and budget, as options of ``create`` and ``set``."""
    for option in (
        click.option(
            "--restart-window", type=int, help="Seconds of healthy running that refill it."
        ),
        click.option("--max-restarts", type=int, help="Crash restarts before it stays in ERROR."),
        click.option("--restart-policy", type=POLICIES, help="always, on-failure or never."),
    ):
        command = option(command)
    return command


NO_LIMIT = "none"


class LimitValue(click.ParamType):
    """A number, or ``none``: no limit (``set`` clears one)."""

    def __init__(self, kind: type) -> None:
        self.kind, self.name = kind, f"{kind.__name__.upper()}|none"

    def convert(self, value, param, ctx):
        if isinstance(value, str) and value.strip().lower() == NO_LIMIT:
            return NO_LIMIT
        try:
            return self.kind(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number or {NO_LIMIT!r}", param, ctx)


def limit_options(command):
    """The resource limits and the action on a breach, as options of ``create`` and ``set``."""
    for option in (
        click.option("--limit-action", type=LIMIT_ACTIONS, help="On a breach: restart, stop "
                     "or warn."),
        click.option("--max-cpu-percent", type=LimitValue(float), help="CPU % its process "
                     "may use (100 = one core; mean of a few samples); none: no limit."),
        click.option("--max-memory-mb", type=LimitValue(int), help="RSS (MB) its process may "
                     "use; none: no limit."),
    ):  # fmt: skip
        command = option(command)
    return command


def split_cleared(settings: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The settings given, and the limits given as ``none`` (to clear)."""
    cleared = [key for key, value in settings.items() if value == NO_LIMIT]
    given = {k: v for k, v in settings.items() if v is not None and k not in cleared}
    return given, cleared


def configuration_from(config_json: str | None, assignments: tuple[str, ...]) -> dict[str, Any]:
    """``--config`` merged with every ``--set``; a bad value names itself."""
    configuration: dict[str, Any] = {}
    if config_json:
        try:
            configuration = json.loads(config_json)
        except ValueError as exc:
            raise Invalid(f"--config is not valid JSON: {exc}", key="configuration") from None
        if not isinstance(configuration, dict):
            raise Invalid("--config must be a JSON object", key="configuration")
    for assignment in assignments:
        key, sep, raw = assignment.partition("=")
        if not sep or not key.strip():
            raise Invalid(f"--set {assignment!r}: expected KEY=VALUE", key="configuration")
        try:
            configuration[key.strip()] = json.loads(raw)
        except ValueError:
            configuration[key.strip()] = raw
    return configuration


@daemons_cli.command("types")
@json_option
@reports_errors
def types_command(as_json: bool) -> None:
    """List the daemon types a daemon can be created from, with their configuration keys."""
    types = daemon_catalog.daemon_types()
    if as_json:
        return emit_json(types)
    for info in types:
        click.echo(f"{info['type']}: {info['description']}")
        properties = info["config_schema"].get("properties", {})
        defaults = info["default_configuration"]
        print_table(
            ("  KEY", "TYPE", "DEFAULT", "DESCRIPTION"),
            [
                (f"  {key}", spec.get("type", "any"), json.dumps(defaults.get(key)),
                 spec.get("description", ""))
                for key, spec in properties.items()
            ],
        )  # fmt: skip
        click.echo()


@daemons_cli.command("create")
@click.argument("name")
@click.option("--type", "daemon_type", required=True, help="A daemon type (see `daemons types`).")
@config_option
@set_option
@click.option("--auto-start", is_flag=True, help="Start it whenever the cluster starts.")
@click.option("--disabled", is_flag=True, help="Create it disabled (it cannot be started).")
@restart_options
@limit_options
@dependency_options
@click.option("--start", is_flag=True, help="Start it once created.")
@json_option
@reports_errors
def create_command(name, daemon_type, config_json, assignments, start, as_json, **options) -> None:
    """Create a daemon NAME of a registered type (STOPPED unless --start)."""
    depends_on = dependencies_given(options)
    given, _no_limit = split_cleared(options)  # none: no limit, as by default
    settings = settings_from(
        enabled=not given.pop("disabled"), auto_start=given.pop("auto_start"),
        depends_on=depends_on, **given,
    )  # fmt: skip
    configuration = configuration_from(config_json, assignments)
    daemon = daemon_catalog.create_daemon(name, daemon_type, configuration, settings)
    if start:
        daemon_control.start_daemon(daemon["id"], wait=30)
        daemon = daemon_queries.get_daemon(daemon["id"])
    if as_json:
        return emit_json(daemon)
    click.echo(f"created {daemon['name']} ({daemon['type']}, {daemon['status']}): {daemon['id']}")


def settings_from(**given: Any) -> DaemonSettings:
    try:
        return DaemonSettings(**{k: v for k, v in given.items() if v is not None})
    except ValidationError as exc:
        error = exc.errors()[0]
        key = ".".join(str(part) for part in error["loc"])
        raise Invalid(f"--{key.replace('_', '-')}: {error['msg']}", key=key) from None


@daemons_cli.command("set")
@click.argument("ref", metavar="NAME_OR_ID")
@config_option
@set_option
@click.option("--rename", help="A new name.")
@click.option("--enabled/--disabled", default=None, help="Allow or forbid starting it.")
@click.option("--auto-start/--no-auto-start", default=None, help="Start it at cluster start.")
@restart_options
@limit_options
@dependency_options
@json_option
@reports_errors
def set_command(ref, config_json, assignments, rename, as_json, **settings) -> None:
    """Change a daemon's configuration keys and settings (a running daemon keeps its
    configuration until it is restarted; a changed limit applies at its next sample)."""
    depends_on = dependencies_given(settings)
    given, cleared = split_cleared(settings)
    if given:
        settings_from(**given)  # the same bounds as the API, named as options
    configuration = configuration_from(config_json, assignments) or None
    result = daemon_configuration.update_daemon(
        ref, configuration=configuration, name=rename, clear=cleared, depends_on=depends_on,
        **given,
    )  # fmt: skip
    if as_json:
        return emit_json(result)
    changed = ", ".join(result["updated"]) or "nothing"
    click.echo(f"{result['daemon']['name']}: changed {changed}")
    if result["restart_required"]:
        click.echo("restart it for the new configuration to take effect")


@daemons_cli.command("delete")
@click.argument("ref", metavar="NAME_OR_ID")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@reports_errors
def delete_command(ref: str, yes: bool) -> None:
    """Delete a stopped daemon with its logs and job history (its jobs stay)."""
    daemon = daemon_queries.get_daemon(ref)
    if not yes and not click.confirm(
        f"Delete daemon {daemon['name']!r} with its logs and job history?", default=False
    ):
        fail("not deleted")
    daemon_catalog.delete_daemon(daemon["id"])
    click.echo(f"deleted {daemon['name']} ({daemon['id']})")
