"""Signing in for the tests: a user and an API token per role, bearer headers, and a login
through the real ``/login`` form (CSRF token included)."""

from __future__ import annotations

import re

from stashhog.auth import tokens, users
from stashhog.auth.roles import Role
from stashhog.errors import NotFound

TEST_PASSWORD = "correct horse battery staple"
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


def username_for(role: Role | str) -> str:
    return f"test-{role}"


def ensure_user(username: str, role: Role | str, password: str = TEST_PASSWORD):
    """The user, created if missing, with this role (inside an app context)."""
    try:
        user = users.find_user(username)
    except NotFound:
        return users.create_user(username, password, role)
    if user.role != role:
        user = users.set_role(username, role)
    return user


def tokens_per_role(app) -> dict[Role, str]:
    """A user per role (``test-viewer`` …) and a fresh token for each."""
    made = {}
    with app.app_context():
        for role in Role:
            ensure_user(username_for(role), role)
            _row, text = tokens.create_token("tests", username_for(role))
            made[role] = text
    return made


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def login(client, username: str, password: str = TEST_PASSWORD):
    """Sign ``client`` (a Flask test client, so cookies persist) in through the form; returns
    the response to the POST."""
    form = client.get("/login")
    token = CSRF_FIELD.search(form.get_data(as_text=True)).group(1)
    data = {"username": username, "password": password, "csrf_token": token}
    return client.post("/login", data=data)


def csrf_token(client) -> str:
    """The session's CSRF token, as a page's ``<meta name="csrf-token">`` carries it."""
    page = client.get("/daemons").get_data(as_text=True)
    return CSRF_META.search(page).group(1)


def with_token(client, token: str):
    """``client`` sending ``Authorization: Bearer <token>`` with every request."""
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return client
