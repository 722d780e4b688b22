"""``URL_PREFIX`` with Flask's test client (which sends whole paths, as a server does): only
paths under the prefix are served, every URL the app builds carries it, the session cookie is
scoped to it; and ``HOST``/``URL_PREFIX`` reach the Procfile's web and Flower lines."""

from __future__ import annotations

import re
import subprocess

import pytest

from stashhog.launcher import child_env, panel_url, procfile_commands
from stashhog.web.prefix import normalise_prefix
from tests.support.access import CSRF_FIELD, CSRF_META, TEST_PASSWORD, username_for
from tests.support.prefixed import prefixed_app

PREFIX = "/daemons-panel"


@pytest.fixture(scope="module")
def prefixed(app, database_url, redis_url, redis_prefix):
    """Served under ``/daemons-panel``, written with a trailing slash as a user may."""
    return prefixed_app(app, database_url, redis_url, redis_prefix, "daemons-panel/")


@pytest.fixture
def signed_in(prefixed):
    client = prefixed.test_client()
    form = client.get(f"{PREFIX}/login").get_data(as_text=True)
    token = CSRF_FIELD.search(form)[1]
    data = {"username": username_for("operator"), "password": TEST_PASSWORD, "csrf_token": token}
    reply = client.post(f"{PREFIX}/login", data=data)
    assert reply.status_code == 302 and reply.location == f"{PREFIX}/", reply.location
    return client


def test_prefix_is_normalised_and_a_bad_one_names_the_setting():
    assert normalise_prefix("daemons-panel/") == "/daemons-panel"
    assert normalise_prefix("/a/b") == "/a/b"
    assert normalise_prefix("") == normalise_prefix("/") == ""
    for bad in ("/a?b", "/a b", "/../x", "/a#b", "http://host/x"):
        with pytest.raises(ValueError, match="URL_PREFIX"):
            normalise_prefix(bad)


def test_only_paths_under_the_prefix_are_served(prefixed, signed_in):
    anonymous = prefixed.test_client()
    assert anonymous.get(f"{PREFIX}/api/health/live").get_json() == {"status": "ok"}
    for path in ("/daemons", "/api/health/live", "/static/css/app.css", "/daemons-panelx/"):
        reply = signed_in.get(path)
        assert reply.status_code == 404, path
        assert f"served under {PREFIX}/" in reply.get_json()["error"]["message"]
    root = anonymous.get("/")
    assert root.status_code == 302 and root.location == f"{PREFIX}/"
    assert signed_in.get(f"{PREFIX}/static/css/app.css").status_code == 200


def test_urls_the_app_builds_carry_the_prefix(prefixed, signed_in):
    anonymous = prefixed.test_client()
    refused = anonymous.get(f"{PREFIX}/daemons?x=1")
    # The login page, and next= the path as the browser sees it (prefix included).
    assert refused.location == f"{PREFIX}/login?next={PREFIX}/daemons?x%3D1"
    page = signed_in.get(f"{PREFIX}/daemons").get_data(as_text=True)
    assert f'<meta name="stashhog-root" content="{PREFIX}">' in page
    links = re.findall(r'(?:href|src|action)="([^"#]+)"', page)
    assert links and all(link.startswith(f"{PREFIX}/") for link in links), links
    document = signed_in.get(f"{PREFIX}/api/openapi.json").get_json()
    assert document["servers"] == [{"url": PREFIX}]
    docs = signed_in.get(f"{PREFIX}/api/docs").get_data(as_text=True)
    assert f'data-openapi-url="{PREFIX}/api/openapi.json"' in docs


def test_the_session_cookie_is_scoped_to_the_prefix_and_changes_still_pass(signed_in):
    cookie = signed_in.get_cookie("session", path=PREFIX)
    assert cookie is not None and cookie.path == PREFIX
    page = signed_in.get(f"{PREFIX}/daemons").get_data(as_text=True)
    headers = {"X-CSRF-Token": CSRF_META.search(page)[1], "Origin": "http://localhost"}
    reply = signed_in.post(f"{PREFIX}/api/jobs", json={"type": "TEST"}, headers=headers)
    assert reply.status_code == 201, reply.get_json()
    logout = signed_in.post(f"{PREFIX}/logout", data={"csrf_token": headers["X-CSRF-Token"]})
    assert logout.status_code == 302 and logout.location == f"{PREFIX}/login"


def test_login_follows_next_under_the_prefix(prefixed):
    client = prefixed.test_client()
    login_page = client.get(f"{PREFIX}/login?next={PREFIX}/jobs")
    assert f'value="{PREFIX}/jobs"' in login_page.get_data(as_text=True)
    token = CSRF_FIELD.search(login_page.get_data(as_text=True))[1]
    data = {"username": username_for("operator"), "password": TEST_PASSWORD,
            "csrf_token": token, "next": f"{PREFIX}/jobs"}  # fmt: skip
    reply = client.post(f"{PREFIX}/login", data=data)
    assert reply.status_code == 302 and reply.location == f"{PREFIX}/jobs"
    # A path outside the prefix is another application's: not followed.
    assert 'value="/elsewhere"' not in client.get(f"{PREFIX}/login?next=/elsewhere").text


def expand(command: str, env: dict[str, str]) -> str:
    """A Procfile line as the launcher's shell expands it."""
    return subprocess.run(
        ["/bin/sh", "-c", f'printf "%s" "{command}"'], env=env, capture_output=True,
        text=True, check=True,
    ).stdout  # fmt: skip


def test_host_and_prefix_reach_the_web_and_flower_command_lines(monkeypatch):
    monkeypatch.setenv("PORT", "5000")
    monkeypatch.setenv("HOST", "0.0.0.0")
    monkeypatch.setenv("URL_PREFIX", "/daemons-panel/")
    monkeypatch.setenv("FLOWER_BASIC_AUTH", "flower:secret")
    env = child_env()
    assert env["HOST"] == "0.0.0.0" and env["URL_PREFIX"] == PREFIX
    commands = procfile_commands()
    assert " -b 0.0.0.0:5000 " in expand(commands["web"], env)
    flower = expand(commands["flower"], env)
    assert "--address=0.0.0.0 " in flower and f"--url_prefix={PREFIX}/flower " in flower
    assert panel_url(env, path="/api/health") == f"http://127.0.0.1:5000{PREFIX}/api/health"

    monkeypatch.delenv("HOST")
    monkeypatch.delenv("URL_PREFIX")
    env = child_env()
    assert " -b 127.0.0.1:5000 " in expand(commands["web"], env)
    flower = expand(commands["flower"], env)
    assert "--address=127.0.0.1 " in flower and "--url_prefix= " in flower
