"""``flask users …``, ``flask tokens …`` and ``flask audit``: manage access from a shell.

Commands act as ``cli:<os user>`` in the audit trail. Passwords come from a prompt, or from
the first line of stdin with ``--password-stdin`` (never from an argument, which other users
of the machine could read in the process list).
"""

from __future__ import annotations

import secrets
import sys
import uuid

import click
from flask import Flask
from flask.cli import AppGroup, with_appcontext

from stashhog.auth import audit, tokens, users
from stashhog.auth.actor import use_cli_actor
from stashhog.auth.roles import Role
from stashhog.cli.output import emit_json, format_time, json_option, print_table, reports_errors

ROLES = click.Choice([str(role) for role in Role])
password_stdin = click.option(
    "--password-stdin", is_flag=True, help="Read the password from the first line of stdin."
)


@click.group("users", cls=AppGroup)
def users_cli() -> None:
    """Manage the users who may sign in to the panel."""
    use_cli_actor()


@click.group("tokens", cls=AppGroup)
def tokens_cli() -> None:
    """Manage API tokens (sent as Authorization: Bearer <token>)."""
    use_cli_actor()


def read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


@users_cli.command("create")
@click.argument("name")
@click.option("--role", type=ROLES, default=str(Role.VIEWER), show_default=True)
@password_stdin
@reports_errors
def create_user(name: str, role: str, password_stdin: bool) -> None:
    """Create a user who signs in with NAME and a password."""
    user = users.create_user(name, read_password(password_stdin), role)
    click.echo(f"created {user.username} ({user.role})")


@users_cli.command("list")
@json_option
@reports_errors
def list_users(as_json: bool) -> None:
    """List users with their roles."""
    rows = [users.user_to_dict(user) for user in users.list_users()]
    if as_json:
        return emit_json(rows)
    print_table(("USERNAME", "ROLE", "LAST LOGIN", "ID"),
                [(u["username"], u["role"], format_time(u["last_login_at"]), u["id"])
                 for u in rows])  # fmt: skip


@users_cli.command("delete")
@click.argument("name")
@reports_errors
def delete_user(name: str) -> None:
    """Delete a user; their sessions and tokens end at once."""
    users.delete_user(name)
    click.echo(f"deleted {name}")


@users_cli.command("set-role")
@click.argument("name")
@click.argument("role", type=ROLES)
@reports_errors
def set_role(name: str, role: str) -> None:
    """Give a user another role (viewer, operator or admin)."""
    user = users.set_role(name, role)
    click.echo(f"{user.username} is now {user.role}")


@users_cli.command("set-password")
@click.argument("name")
@password_stdin
@reports_errors
def set_password(name: str, password_stdin: bool) -> None:
    """Set a user's password; their open sessions end."""
    users.set_password(name, read_password(password_stdin))
    click.echo(f"password of {name} changed")


@users_cli.command("init")
@json_option
@reports_errors
def init_users(as_json: bool) -> None:
    """If there is no user yet, create "admin" with a random password and print it once."""
    if users.count_users():
        return emit_json({"created": False}) if as_json else None
    password = secrets.token_urlsafe(12)
    users.create_user("admin", password, Role.ADMIN)
    if as_json:
        return emit_json({"created": True, "username": "admin", "password": password})
    click.echo(f"created user admin with password {password}")


@tokens_cli.command("create")
@click.argument("name")
@click.option("--user", "username", required=True, help="The user the token acts as.")
@reports_errors
def create_token(name: str, username: str) -> None:
    """Create an API token for USER and print it (shown this once only)."""
    _token, text = tokens.create_token(name, username)
    click.echo(text)


@tokens_cli.command("list")
@click.option("--user", "username", help="Only this user's tokens.")
@json_option
@reports_errors
def list_tokens(username: str | None, as_json: bool) -> None:
    """List tokens (never their text): name, user, state, last use."""
    rows = [tokens.token_to_dict(t, u.username) for t, u in tokens.list_tokens(username)]
    if as_json:
        return emit_json(rows)
    print_table(("NAME", "USER", "STATE", "PREFIX", "LAST USED", "ID"),
                [(r["name"], r["user"], "revoked" if r["revoked_at"] else "active",
                  r["prefix"] + "…", format_time(r["last_used_at"]), r["id"])
                 for r in rows])  # fmt: skip


@tokens_cli.command("revoke")
@click.argument("ref", metavar="NAME_OR_ID")
@reports_errors
def revoke_token(ref: str) -> None:
    """Revoke a token: requests carrying it are refused from now on."""
    token = tokens.revoke_token(_uuid_or_text(ref))
    click.echo(f"revoked {token.name}")


@click.command("audit")
@with_appcontext
@click.option("--actor", help="Only this actor.")
@click.option("--action", help='Actions starting with this, e.g. "daemon.".')
@click.option("--target", help="A target's id or name.")
@click.option("--outcome", type=click.Choice(["ok", "failed", "error", "denied"]))
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@json_option
@reports_errors
def audit_command(as_json: bool, **filters) -> None:
    """Show the audit trail, newest first."""
    events = [audit.event_to_dict(e) for e in audit.list_events(**filters)]
    if as_json:
        return emit_json(events)
    print_table(("TIME", "ACTOR", "ACTION", "TARGET", "OUTCOME", "FROM", "MESSAGE"),
                [(format_time(e["created_at"]), e["actor"], e["action"],
                  e["target_name"] or e["target_id"], e["outcome"], e["address"], e["message"])
                 for e in events])  # fmt: skip


def _uuid_or_text(ref: str) -> uuid.UUID | str:
    try:
        return uuid.UUID(ref)
    except ValueError:
        return ref


def init_app(app: Flask) -> None:
    app.cli.add_command(users_cli)
    app.cli.add_command(tokens_cli)
    app.cli.add_command(audit_command)
