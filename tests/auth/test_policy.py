"""Deny by default: every route in the URL map, without credentials, is a 401 (API, socket)
or a redirect to the login page (pages), except health and login; a route added tomorrow is
covered without being listed; each role gets exactly its rights."""

from __future__ import annotations

import uuid

import pytest
from flask import jsonify

from stashhog import create_app
from stashhog.auth.policy import MACHINE_ENDPOINTS, OPEN_ENDPOINTS
from stashhog.auth.roles import Role
from tests.support.access import tokens_per_role

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def sample_path(rule) -> str:
    """The rule with each variable filled in with a value its converter accepts."""
    values = {}
    for name in rule.arguments:
        converter = rule._converters[name].__class__.__name__
        values[name] = {"UUIDConverter": uuid.uuid4(), "IntegerConverter": 1}.get(converter, "x")
    return rule.build(values, append_unknown=False)[1]


# A WebSocket rule matches only an upgrade request (a plain GET is a 400 from routing).
UPGRADE = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
           "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}  # fmt: skip


def protected_requests(app):
    for rule in app.url_map.iter_rules():
        if rule.endpoint in OPEN_ENDPOINTS:
            continue
        for method in sorted(set(rule.methods) & set(METHODS)):
            yield rule.endpoint, method, sample_path(rule), rule.websocket


def assert_refused_without_credentials(client, endpoint, method, path, websocket) -> None:
    response = client.open(path, method=method, headers=UPGRADE if websocket else None)
    where = f"{method} {path} ({endpoint})"
    if path.startswith("/api/") or endpoint in MACHINE_ENDPOINTS:  # programs get a 401
        assert response.status_code == 401, where
        assert response.get_json()["error"]["code"] == "unauthorized", where
        assert response.headers["WWW-Authenticate"].startswith("Bearer"), where
    else:
        assert response.status_code == 302, where
        assert response.headers["Location"].startswith("/login?next="), where


def test_every_route_in_the_url_map_refuses_a_request_without_credentials(app, anonymous):
    checked = list(protected_requests(app))
    assert len(checked) > 30  # the whole map, not an empty loop
    assert ("__flask_sock.daemons_ws", "GET", "/api/daemons/ws", True) in checked
    for request in checked:
        assert_refused_without_credentials(anonymous, *request)


def test_only_health_login_and_static_files_answer_without_credentials(anonymous):
    assert anonymous.get("/api/health/live").status_code == 200
    assert anonymous.get("/api/health").status_code in (200, 503)
    assert anonymous.get("/login").status_code == 200
    assert anonymous.get("/static/css/app.css").status_code == 200
    assert OPEN_ENDPOINTS == {"static", "api.health", "api.health_live", "auth.login"}


def test_a_route_added_later_is_covered_without_being_listed(app, database_url, redis_url):
    fresh = create_app({**app.config, "TESTING": True})
    fresh.add_url_rule("/api/brand-new", "brand_new", lambda: jsonify(ok=True), methods=["GET"])
    fresh.add_url_rule("/api/brand-new", "brand_new_post", lambda: jsonify(ok=True),
                       methods=["POST"])  # fmt: skip
    tokens = tokens_per_role(fresh)
    client = fresh.test_client()
    assert client.get("/api/brand-new").status_code == 401
    viewer = {"Authorization": f"Bearer {tokens[Role.VIEWER]}"}
    operator = {"Authorization": f"Bearer {tokens[Role.OPERATOR]}"}
    assert client.get("/api/brand-new", headers=viewer).status_code == 200
    assert client.post("/api/brand-new", headers=viewer).status_code == 403
    assert client.post("/api/brand-new", headers=operator).status_code == 200


def test_a_bad_or_revoked_token_is_a_401_and_not_a_fallback_to_the_cookie(app, anonymous):
    response = anonymous.get("/api/daemons", headers={"Authorization": "Bearer shd_nope"})
    assert response.status_code == 401
    assert "unknown or revoked" in response.get_json()["error"]["message"]
    with app.app_context():
        from stashhog.auth import tokens

        row, text = tokens.create_token("short-lived", "test-viewer")
        headers = {"Authorization": f"Bearer {text}"}
        assert anonymous.get("/api/daemons", headers=headers).status_code == 200
        tokens.revoke_token(row.id)
    assert anonymous.get("/api/daemons", headers=headers).status_code == 401


# (method, path template, body): one action of each kind, and the lowest role allowed.
ACTIONS = [
    ("GET", "/api/daemons", None, Role.VIEWER),
    ("GET", "/api/daemons/{id}/logs", None, Role.VIEWER),
    ("GET", "/api/jobs", None, Role.VIEWER),
    ("GET", "/api/audit", None, Role.VIEWER),
    ("GET", "/api/session", None, Role.VIEWER),
    ("GET", "/daemons", None, Role.VIEWER),
    ("GET", "/activity", None, Role.VIEWER),
    ("POST", "/api/daemons/{id}/stop", None, Role.OPERATOR),
    ("PUT", "/api/daemons/{id}", {"enabled": True}, Role.OPERATOR),
    ("POST", "/api/jobs/{job}/cancel", None, Role.OPERATOR),
    ("POST", "/api/daemons/stop-all", None, Role.OPERATOR),
    ("DELETE", "/api/daemons/{unknown}", None, Role.OPERATOR),
    ("GET", "/api/users", None, Role.ADMIN),
    ("GET", "/api/tokens", None, Role.ADMIN),
    ("POST", "/api/users", {"username": "x", "password": "1"}, Role.ADMIN),
    ("DELETE", "/api/tokens/{unknown}", None, Role.ADMIN),
]


@pytest.mark.parametrize("role", list(Role))
def test_each_role_gets_exactly_its_rights(app, client_as, role, make_daemon):
    daemon = make_daemon()
    values = {"id": daemon.id, "job": uuid.uuid4(), "unknown": uuid.uuid4()}
    client = client_as(role)
    for method, template, body, needed in ACTIONS:
        path = template.format(**values)
        response = client.open(path, method=method, json=body)
        where = f"{role} {method} {path}"
        if role.allows(needed):
            assert response.status_code not in (401, 403), where
        else:
            assert response.status_code == 403, where
            assert response.get_json()["error"]["code"] == "forbidden", where
            assert f"needs the {needed} role" in response.get_json()["error"]["message"]


def test_a_refused_change_is_in_the_audit_trail(client, client_as, make_daemon):
    daemon = make_daemon()
    assert client_as(Role.VIEWER).post(f"/api/daemons/{daemon.id}/stop").status_code == 403
    events = client.get("/api/audit?outcome=denied&actor=test-viewer&limit=1").get_json()
    event = events["events"][0]
    assert event["action"] == "access.denied"
    assert event["details"]["path"] == f"/api/daemons/{daemon.id}/stop"
    assert event["actor_via"] == "token:tests" and event["address"] == "127.0.0.1"
