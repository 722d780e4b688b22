"""What a hostile web page could try with the operator's own browser, refused: a cross-site
form (bodyless POST, or a form-encoded body), a request without the CSRF token, a foreign
Host (DNS rebinding); and that a token request needs none of the browser checks."""

from __future__ import annotations

import pytest

from stashhog import create_app
from stashhog.auth.roles import Role
from stashhog.config import InsecureConfiguration, load_config
from tests.support.access import csrf_token, login, username_for


@pytest.fixture
def signed_in(app, role_tokens):
    """A test client signed in as an operator through the login form (session cookie)."""
    client = app.test_client()
    assert login(client, username_for(Role.OPERATOR)).status_code == 302
    return client


def test_a_cookie_carried_post_without_the_csrf_token_is_refused(signed_in, make_daemon):
    daemon = make_daemon()
    for path in ("/api/daemons/stop-all", f"/api/daemons/{daemon.id}/stop"):
        response = signed_in.post(path)
        assert response.status_code == 403, path
        assert response.get_json()["error"]["code"] == "csrf_failed"


def test_a_cross_site_form_cannot_stop_anything(signed_in, make_daemon):
    # What <form method=post action=http://127.0.0.1:5000/api/daemons/stop-all> sends.
    response = signed_in.post(
        "/api/daemons/stop-all",
        data={"anything": "1"},
        headers={"Origin": "https://evil.example", "Referer": "https://evil.example/"},
    )
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "forbidden_origin"
    # Even without an Origin (an old browser): no CSRF token, no change.
    response = signed_in.post("/api/daemons/stop-all", data={"anything": "1"})
    assert response.status_code == 403


def test_with_the_csrf_token_the_panel_works_and_bodies_must_be_json(signed_in, make_daemon):
    daemon = make_daemon()
    headers = {"X-CSRF-Token": csrf_token(signed_in)}
    assert signed_in.post("/api/daemons/stop-all", headers=headers).status_code == 200
    ok = signed_in.put(f"/api/daemons/{daemon.id}", json={"enabled": False}, headers=headers)
    assert ok.status_code == 200, ok.get_json()
    form = signed_in.put(f"/api/daemons/{daemon.id}", data={"enabled": "true"}, headers=headers)
    assert form.status_code == 415
    # The form field works as well as the header (the logout form uses it).
    field = signed_in.post("/api/daemons/stop-all", data={"csrf_token": headers["X-CSRF-Token"]})
    assert field.status_code == 415  # a token, but still not a JSON body


def test_a_token_request_needs_no_csrf_token(client, make_daemon):
    assert client.post("/api/daemons/stop-all").status_code == 200


def test_a_foreign_host_is_refused_with_400(client, anonymous):
    for host in ("evil.example", "attacker.localhost.evil.example", "127.0.0.1.evil.example"):
        assert client.get("/api/daemons", headers={"Host": host}).status_code == 400, host
        assert anonymous.get("/login", headers={"Host": host}).status_code == 400, host
    assert client.get("/api/daemons", headers={"Host": "127.0.0.1:5000"}).status_code == 200
    assert client.get("/api/daemons", headers={"Host": "localhost"}).status_code == 200


def test_every_response_carries_the_security_headers(client, anonymous):
    responses = [client.get("/api/daemons"), anonymous.get("/api/daemons")]
    responses += [anonymous.get("/login"), anonymous.get("/static/js/api.js")]
    for response in responses:
        csp = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "same-origin"
        assert response.headers["X-Frame-Options"] == "DENY"


def test_trusted_hosts_and_origins_come_from_the_environment_and_cannot_be_emptied(app):
    settings = load_config(
        environ={
            "STASHHOG_TRUSTED_HOSTS": "panel.example.org, .example.net",
            "STASHHOG_ALLOWED_ORIGINS": "https://panel.example.org",
        }
    )
    assert settings["TRUSTED_HOSTS"] == ["panel.example.org", ".example.net"]
    assert settings["ALLOWED_ORIGINS"] == ["https://panel.example.org"]
    behind_proxy = create_app({**app.config, **settings, "PROXY_HOPS": 1}).test_client()
    reply = behind_proxy.get("/login", headers={"Host": "a.example.net"})
    assert reply.status_code == 200
    assert behind_proxy.get("/login", headers={"Host": "localhost"}).status_code == 400
    with pytest.raises(InsecureConfiguration, match="TRUSTED_HOSTS"):
        create_app({**app.config, "TRUSTED_HOSTS": []})
