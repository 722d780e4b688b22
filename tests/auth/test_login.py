"""The login page: the same answer for an unknown user and a wrong password, a limit on
failures kept in Redis, a session cookie with the right flags, logout, and a new password
ending the user's other sessions."""

from __future__ import annotations

import uuid

import pytest

from stashhog import create_app
from stashhog.auth import users
from stashhog.auth.roles import Role
from tests.support.access import TEST_PASSWORD, ensure_user, login, username_for


def test_an_unknown_user_and_a_wrong_password_get_the_same_answer(app, anonymous):
    unknown = login(anonymous, f"nobody-{uuid.uuid4().hex[:6]}")
    wrong = login(anonymous, username_for(Role.VIEWER), "not the password")
    assert unknown.status_code == wrong.status_code == 401
    for response in (unknown, wrong):
        assert "Unknown user or wrong password." in response.get_data(as_text=True)
    assert anonymous.get("/api/session").status_code == 401


def test_signing_in_sets_a_strict_session_cookie_and_the_next_page(anonymous):
    response = login(anonymous, username_for(Role.VIEWER))
    assert response.status_code == 302 and response.headers["Location"] == "/"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Expires=" in cookie
    assert anonymous.get("/api/session").get_json() == {
        "user": username_for(Role.VIEWER),
        "role": "viewer",
        "via": "session",
    }


def test_over_https_the_cookie_is_secure(anonymous):
    form = anonymous.get("/login", base_url="https://localhost")
    token = form.get_data(as_text=True).split('name="csrf_token" value="')[1].split('"')[0]
    response = anonymous.post(
        "/login",
        base_url="https://localhost",
        headers={"Referer": "https://localhost/login"},
        data={"username": username_for(Role.VIEWER), "password": TEST_PASSWORD,
              "csrf_token": token},
    )  # fmt: skip
    assert response.status_code == 302
    assert "Secure" in response.headers["Set-Cookie"]


def test_next_goes_only_to_a_page_of_this_site(anonymous):
    for target, expected in (("/jobs", "/jobs"), ("https://evil.example/", "/"),
                             ("//evil.example/", "/")):  # fmt: skip
        anonymous.post("/logout")  # not signed in: a redirect, nothing else
        form = anonymous.get(f"/login?next={target}").get_data(as_text=True)
        token = form.split('name="csrf_token" value="')[1].split('"')[0]
        response = anonymous.post("/login", data={
            "username": username_for(Role.VIEWER), "password": TEST_PASSWORD,
            "csrf_token": token, "next": target})  # fmt: skip
        assert response.headers["Location"] == expected, target
        _logout(anonymous)


def _logout(client) -> None:
    page = client.get("/daemons").get_data(as_text=True)
    token = page.split('<meta name="csrf-token" content="')[1].split('"')[0]
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302


def test_logout_ends_the_session(anonymous):
    login(anonymous, username_for(Role.VIEWER))
    assert anonymous.get("/api/session").status_code == 200
    _logout(anonymous)
    assert anonymous.get("/api/session").status_code == 401


def test_a_login_form_without_its_csrf_token_is_refused(anonymous):
    response = anonymous.post(
        "/login", data={"username": username_for(Role.VIEWER), "password": TEST_PASSWORD}
    )
    assert response.status_code == 403
    assert anonymous.get("/api/session").status_code == 401


def test_a_new_password_ends_the_users_other_sessions(app):
    name = f"changer-{uuid.uuid4().hex[:6]}"
    with app.app_context():
        ensure_user(name, Role.VIEWER)
    first, second = app.test_client(), app.test_client()
    login(first, name)
    assert first.get("/api/session").status_code == 200
    with app.app_context():
        users.set_password(name, "a brand new password")
    assert first.get("/api/session").status_code == 401
    assert login(second, name).status_code == 401  # the old password is gone
    assert login(second, name, "a brand new password").status_code == 302


def test_failed_logins_are_limited_across_web_processes(app):
    """Two apps (two web processes) on one Redis share the count; successes do not count."""
    limited = {**app.config, "LOGIN_RATE_LIMIT": "3 per minute"}
    one, two = create_app(limited).test_client(), create_app(limited).test_client()
    name = f"limited-{uuid.uuid4().hex[:6]}"
    with app.app_context():
        ensure_user(name, Role.VIEWER)
    assert login(one, name).status_code == 302  # a success is not counted
    statuses = [login(c, name, "wrong").status_code for c in (one, two, one, two)]
    assert statuses == [401, 401, 401, 429]
    assert login(one, name).status_code == 429  # the right password waits as well
    assert "Too many failed sign-ins" in login(two, name).get_data(as_text=True)


def test_each_app_counts_failures_in_its_own_redis(app):
    """An app made later, on another Redis (here one nobody listens on), leaves the first
    app's limit where it was: in the first app's Redis, still counting."""
    limited = {**app.config, "LOGIN_RATE_LIMIT": "2 per minute"}
    one = create_app(limited).test_client()
    elsewhere = {k: v for k, v in limited.items() if not k.startswith("RATELIMIT_")}
    create_app({**elsewhere, "REDIS_URL": "redis://127.0.0.1:1/0"})
    name = f"own-{uuid.uuid4().hex[:6]}"
    with app.app_context():
        ensure_user(name, Role.VIEWER)
    assert [login(one, name, "wrong").status_code for _ in range(3)] == [401, 401, 429]


@pytest.mark.parametrize("bad", ["", "short"])
def test_passwords_shorter_than_eight_characters_are_refused(app, bad):
    from stashhog.errors import Invalid

    with app.app_context(), pytest.raises(Invalid, match="at least 8"):
        users.create_user(f"weak-{uuid.uuid4().hex[:6]}", bad, Role.VIEWER)
