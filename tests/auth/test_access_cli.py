"""``flask users …``, ``flask tokens …`` and ``flask audit``: manage access from a shell, as
``cli:<os user>`` in the audit trail."""

from __future__ import annotations

import getpass
import hashlib
import json
import uuid

import pytest
from sqlalchemy import select

from stashhog.auth.models import ApiToken
from stashhog.extensions import db


@pytest.fixture
def flask_cli(app):
    runner = app.test_cli_runner()

    def invoke(*args: str, input: str | None = None):
        return runner.invoke(args=list(args), input=input)

    return invoke


def test_users_create_list_set_role_set_password_and_delete(flask_cli, anonymous):
    name = f"cli-{uuid.uuid4().hex[:6]}"
    made = flask_cli("users", "create", name, "--role", "operator", "--password-stdin",
                     input="first password\n")  # fmt: skip
    assert made.exit_code == 0, made.output
    listed = json.loads(flask_cli("users", "list", "--json").output)
    assert {"username": name, "role": "operator"}.items() <= next(
        u for u in listed if u["username"] == name
    ).items()
    assert "first password" not in flask_cli("users", "list").output
    assert flask_cli("users", "set-role", name, "viewer").output.strip() == f"{name} is now viewer"
    changed = flask_cli("users", "set-password", name, "--password-stdin", input="second pass\n")
    assert changed.exit_code == 0, changed.output
    from tests.support.access import login

    assert login(anonymous, name, "first password").status_code == 401
    assert login(anonymous, name, "second pass").status_code == 302
    assert flask_cli("users", "delete", name).exit_code == 0
    assert anonymous.get("/api/session").status_code == 401  # the deleted user's session ended
    missing = flask_cli("users", "delete", name)
    assert missing.exit_code == 2 and "no user" in missing.output


def test_a_prompted_password_is_asked_twice(flask_cli):
    name = f"prompted-{uuid.uuid4().hex[:6]}"
    result = flask_cli("users", "create", name, input="prompted pw 1\nprompted pw 1\n")
    assert result.exit_code == 0, result.output
    assert result.output.count("Password") == 1 and "Repeat for confirmation" in result.output


def test_the_last_admin_cannot_be_demoted_or_deleted(flask_cli, role_tokens):
    listed = json.loads(flask_cli("users", "list", "--json").output)
    admins = [u["username"] for u in listed if u["role"] == "admin"]
    for other in admins[1:]:
        flask_cli("users", "set-role", other, "operator")
    try:
        refused = flask_cli("users", "set-role", admins[0], "viewer")
        assert refused.exit_code == 1 and "last admin" in refused.output
        assert "last admin" in flask_cli("users", "delete", admins[0]).output
    finally:
        for other in admins[1:]:
            flask_cli("users", "set-role", other, "admin")


def test_a_token_is_printed_once_stored_hashed_and_revoked(flask_cli, app, anonymous):
    name = f"ci-{uuid.uuid4().hex[:6]}"
    created = flask_cli("tokens", "create", name, "--user", "test-operator")
    assert created.exit_code == 0, created.output
    text = created.output.strip()
    assert text.startswith("shd_") and len(text) > 40
    headers = {"Authorization": f"Bearer {text}"}
    assert anonymous.get("/api/session", headers=headers).get_json()["role"] == "operator"
    with app.app_context():
        row = db.session.scalars(select(ApiToken).where(ApiToken.name == name)).one()
        assert row.token_hash == hashlib.sha256(text.encode()).hexdigest()
        assert text not in {row.token_hash, row.prefix}
    listing = flask_cli("tokens", "list", "--user", "test-operator").output
    assert name in listing and text not in listing
    assert flask_cli("tokens", "revoke", name).exit_code == 0
    assert anonymous.get("/api/session", headers=headers).status_code == 401
    assert "revoked" in flask_cli("tokens", "list").output


def test_users_init_creates_the_first_admin_only_once(flask_cli):
    # The session already has users: nothing is created, nothing printed.
    assert json.loads(flask_cli("users", "init", "--json").output) == {"created": False}


def test_the_cli_acts_as_the_os_user_in_the_audit_trail(flask_cli):
    name = f"audited-{uuid.uuid4().hex[:6]}"
    flask_cli("users", "create", name, "--password-stdin", input="audited password\n")
    events = json.loads(flask_cli("audit", "--action", "user.create", "--json").output)
    event = next(e for e in events if e["target_name"] == name)
    assert event["actor"] == f"cli:{getpass.getuser()}" and event["outcome"] == "ok"
    table = flask_cli("audit", "--target", name).output
    assert "user.create" in table and f"cli:{getpass.getuser()}" in table
