"""``/api/openapi.json`` describes the routes that really exist, with the parameters they
really parse (the health checks and the WebSocket included); ``/api/docs`` is Swagger UI on it,
from the panel's own static files, with no inline script."""

from __future__ import annotations

import re

from stashhog.api.openapi import OPERATIONS, openapi_document
from stashhog.api.openapi_described import SystemHealth, SystemLiveness
from stashhog.relay import WS_ENDPOINT

UNDOCUMENTED = {"api.openapi_json", "api.docs"}


def test_served_document_is_openapi_3_built_from_the_routes(client):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    document = response.get_json()
    assert document == openapi_document()
    assert document["openapi"].startswith("3.")


def test_every_api_route_is_documented_with_its_methods_and_nothing_else(app):
    routes = set()
    for rule in app.url_map.iter_rules():
        documented = rule.endpoint.startswith("api.") or rule.endpoint == WS_ENDPOINT
        if documented and rule.endpoint not in UNDOCUMENTED:
            path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
            routes |= {(path, method.lower()) for method in rule.methods - {"HEAD", "OPTIONS"}}
    paths = openapi_document()["paths"]
    documented = {(path, method) for path, item in paths.items() for method in item}
    assert routes == documented


def test_query_parameters_are_the_fields_of_the_model_the_route_parses_with():
    paths = openapi_document()["paths"]
    for op in OPERATIONS:
        spec = paths[op.path][op.method.lower()]
        names = {p["name"] for p in spec["parameters"] if p["in"] == "query"}
        assert names == set(op.query.model_fields), op.path


def test_every_operation_documents_its_errors():
    paths = openapi_document()["paths"]
    # The routes route() registers (the health checks and the socket answer differently).
    for path, method in {(op.path, op.method.lower()) for op in OPERATIONS}:
        for spec in (paths[path][method],):
            statuses = set(spec["responses"])
            assert {"400", "413", "503"} <= statuses, (method, path)
            if "{" in path:
                assert "404" in statuses, (method, path)
            if "requestBody" in spec:
                assert {"415", "422"} <= statuses, (method, path)
            for status, response in spec["responses"].items():
                # Errors are always JSON; a success is JSON unless it is an image or empty.
                image = status == "200" and set(response["content"]) == {"image/jpeg"}
                empty = status == "204" and not response["content"]
                assert image or empty or "application/json" in response["content"], (method, path)


def test_health_answers_match_their_documented_schemas(anonymous):
    paths = openapi_document()["paths"]
    assert paths["/api/health"]["get"]["security"] == []  # open to probes
    live = anonymous.get("/api/health/live")
    SystemLiveness.model_validate(live.get_json())
    ready = anonymous.get("/api/health")  # 200 or 503, as the session's workers run or not
    report = SystemHealth.model_validate(ready.get_json())
    assert ready.status_code == (200 if report.status == "ok" else 503), ready.get_json()
    socket = paths["/api/daemons/ws"]["get"]
    assert {"101", "401", "403", "503"} <= set(socket["responses"])
    assert "subscribe" in socket["description"] and socket["x-websocket"]["client-messages"]


def test_docs_page_is_swagger_ui_from_our_own_files_with_no_inline_script(client):
    response = client.get("/api/docs")
    assert response.status_code == 200 and response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert 'data-openapi-url="/api/openapi.json"' in page
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page, re.S)
    sources = [re.search(r'src="([^"]+)"', attrs)[1] for attrs, _body in scripts]
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in sources
    assert "/static/js/pages/api-docs.js" in sources
    assert all(source.startswith("/static/") for source in sources)
    assert not any(body.strip() for _attrs, body in scripts), "no inline script"
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    for source in sources:
        assert client.get(source).status_code == 200, source
