"""``/api/openapi.json`` describes the routes that really exist, with the parameters they
really parse; ``/api/docs`` renders it without anything from outside."""

from __future__ import annotations

import re

from stashhog.api.openapi import OPERATIONS, openapi_document

UNDOCUMENTED = {"api.health", "api.health_live", "api.openapi_json", "api.docs"}


def test_served_document_is_openapi_3_built_from_the_routes(client):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    document = response.get_json()
    assert document == openapi_document()
    assert document["openapi"].startswith("3.")


def test_every_api_route_is_documented_with_its_methods_and_nothing_else(app):
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("api.") and rule.endpoint not in UNDOCUMENTED:
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
    for path, item in openapi_document()["paths"].items():
        for method, spec in item.items():
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


def test_docs_page_lists_every_operation_and_loads_nothing_from_outside(client):
    response = client.get("/api/docs")
    assert response.status_code == 200 and response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    for path, item in openapi_document()["paths"].items():
        assert f"<code>{path}</code>" in page
        for spec in item.values():
            assert f'id="{spec["operationId"]}"' in page
    assert "<script" not in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
