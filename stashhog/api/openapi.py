"""Routes declared once: ``route`` registers a view, parses its input with the pydantic models
of ``stashhog.api.schemas``, and records the operation; ``/api/openapi.json`` is built from
those records, so the document describes exactly what the routes accept and return (the
health checks and the WebSocket, registered otherwise, are described in
``openapi_described``). ``/api/docs`` is Swagger UI (vendored in ``static/vendor``, started by
``static/js/pages/api-docs.js``) on that document: it can send requests ("Try it out").
"""

from __future__ import annotations

import functools
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Response, jsonify, render_template, request
from pydantic import BaseModel, TypeAdapter

from stashhog.api import bp
from stashhog.api.openapi_described import described_paths
from stashhog.api.parsing import parse_body, parse_query, refuse_large_body
from stashhog.api.responses import ErrorResponse
from stashhog.api.schemas import NoQuery

REF = "#/components/schemas/{model}"
ERRORS = {
    401: "No credentials, or a token that is unknown or revoked.",
    403: "The role may not do this, or (cookie sessions) the CSRF token or Origin is wrong.",
    400: "Malformed request: an unknown or invalid query parameter, or a body that is not a "
    "JSON object.",
    404: "No such resource (unknown or malformed id).",
    409: "Conflicting state, e.g. starting a disabled daemon or a name already in use.",
    413: "Request body too large.",
    412: "The daemon changed since the `If-Match` ETag was read; read it again.",
    415: "The body is not application/json.",
    422: "The body parsed but a field is invalid; `key` names it.",
    503: "A dependency (PostgreSQL, Redis) is unavailable.",
}
TAGS = [
    {"name": "daemons", "description": "Supervised long-running daemons."},
    {"name": "daemon-types", "description": "The types daemons are created from."},
    {"name": "jobs", "description": "Finite jobs on the jobs queue."},
    {"name": "media", "description": "The media library and its generated metadata."},
    {"name": "audit", "description": "What operators did: the audit trail."},
    {"name": "session", "description": "Who the request acts as."},
    {"name": "users", "description": "Users and their roles (admin only)."},
    {"name": "tokens", "description": "API tokens (admin only)."},
    {"name": "health", "description": "Liveness and readiness, open to probes."},
    {"name": "live", "description": "Live events over a WebSocket."},
]
SECURITY_SCHEMES = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "An API token (`flask --app app tokens create`), with its user's role.",
    },
    "session": {
        "type": "apiKey",
        "in": "cookie",
        "name": "session",
        "description": "The panel's cookie after /login; changes also need X-CSRF-Token.",
    },
}
DESCRIPTION = """\
Every response is JSON. Errors are `{"error": {"code": ..., "message": ...}}`, with `key`
naming an offending body field and `parameter` an offending query parameter. Ids are UUID
strings (log line ids are integers); timestamps are ISO 8601 with a timezone. Unknown query
parameters and body fields are refused. Every operation needs credentials, `Authorization:
Bearer <token>` or the panel's session cookie: reading needs the viewer role, changing
operator, users and tokens admin."""


@dataclass
class Operation:
    method: str
    rule: str
    view: Callable[..., Any]
    tag: str
    query: type[BaseModel]
    body: Any
    body_required: bool
    responses: dict[int, tuple[Any, str]]
    errors: tuple[int, ...] = field(default=())
    media_type: str = "application/json"

    @property
    def path(self) -> str:
        return "/api" + re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", self.rule)

    @property
    def path_params(self) -> list[str]:
        return re.findall(r"<(?:[^:<>]+:)?([^<>]+)>", self.rule)


OPERATIONS: list[Operation] = []


def route(
    endpoint: str,
    response: Any,
    *,
    status: int = 200,
    query: type[BaseModel] = NoQuery,
    body: Any = None,
    body_required: bool = True,
    errors: tuple[int, ...] = (),
    media_type: str = "application/json",
):
    """Register the view for ``endpoint`` ("METHOD /rule" under ``/api``), answering
    ``status`` with the ``response`` model. Path ids use the ``uuid`` converter (so a
    malformed id is a 404, and a method not declared for a path a 405), the parsed query
    arrives as ``query=`` and the parsed body as ``body=``; the view returns a JSON-ready
    dict, optionally with headers; a view with another ``media_type`` returns a Response."""
    method, rule = endpoint.split(" ", 1)
    responses = {status: (response, "Created." if status == 201 else "Success.")}

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        tag = rule.strip("/").split("/")[0]
        op = Operation(
            method, rule, view, tag, query, body, body_required, responses, errors, media_type
        )

        @functools.wraps(view)
        def handle(**path_args: uuid.UUID):
            refuse_large_body()
            kwargs: dict[str, Any] = dict(path_args)
            parsed_query = parse_query(query)
            if query is not NoQuery:
                kwargs["query"] = parsed_query
            if body is not None:
                kwargs["body"] = parse_body(body, required=body_required)
            result = view(**kwargs)
            if isinstance(result, Response):
                return result
            data, *headers = _as_tuple(result)
            return jsonify(data), status, *headers

        bp.add_url_rule(
            rule, view.__name__, handle, methods=[method], provide_automatic_options=False
        )
        OPERATIONS.append(op)
        return handle

    return decorate


def _as_tuple(result: Any) -> tuple:
    return result if isinstance(result, tuple) else (result,)


# -- the document ----------------------------------------------------------------------------


class _Components:
    """Collects JSON Schemas of models under ``components/schemas``."""

    def __init__(self) -> None:
        self.schemas: dict[str, Any] = {}
        self.models: dict[str, type[BaseModel]] = {}

    def schema(self, type_: Any, mode: str) -> dict[str, Any]:
        adapter = type_ if isinstance(type_, TypeAdapter) else TypeAdapter(type_)
        schema = adapter.json_schema(ref_template=REF, mode=mode)
        self.schemas.update(schema.pop("$defs", {}))
        if isinstance(type_, type) and issubclass(type_, BaseModel):
            known = self.models.setdefault(type_.__name__, type_)
            if known is not type_:  # one would silently stand for the other
                raise ValueError(
                    f"two models named {type_.__name__} ({known.__module__},"
                    f" {type_.__module__}): schemas are keyed by class name"
                )
            self.schemas[type_.__name__] = schema
            return {"$ref": REF.format(model=type_.__name__)}
        return schema


def openapi_document(root: str = "") -> dict[str, Any]:
    """The document; ``root`` is the path the API is served under (URL_PREFIX), if any."""
    components = _Components()
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, components)
    error = components.schema(ErrorResponse, "serialization")
    for path, item in described_paths(components, error).items():
        paths.setdefault(path, {}).update(item)
    document = {
        "openapi": "3.1.0",
        "info": {"title": "StashHog Daemons API", "version": "1", "description": DESCRIPTION},
        "tags": TAGS,
        "paths": paths,
        "components": {
            "schemas": dict(sorted(components.schemas.items())),
            "securitySchemes": SECURITY_SCHEMES,
        },
        "security": [{"bearer": []}, {"session": []}],
    }
    if root:  # paths are relative to the server, which is then not "/"
        document["servers"] = [{"url": root}]
    return document


def _operation(op: Operation, components: _Components) -> dict[str, Any]:
    summary, _, description = (op.view.__doc__ or op.view.__name__).strip().partition("\n")
    spec: dict[str, Any] = {
        "operationId": op.view.__name__,
        "tags": [op.tag],
        "summary": summary.strip().replace("``", "`"),
        "description": " ".join(description.split()).replace("``", "`"),
        "parameters": _path_parameters(op) + _query_parameters(op.query, components),
        "responses": _responses(op, components),
    }
    if op.body is not None:
        schema = components.schema(op.body, "validation")
        spec["requestBody"] = {
            "required": op.body_required,
            "content": {"application/json": {"schema": schema}},
        }
    return spec


def _path_parameters(op: Operation) -> list[dict[str, Any]]:
    return [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "string", "format": "uuid"},
        }
        for name in op.path_params
    ]


def _query_parameters(model: type[BaseModel], components: _Components) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template=REF)
    components.schemas.update(schema.pop("$defs", {}))
    required = set(schema.get("required", []))
    parameters = []
    for name, prop in schema.get("properties", {}).items():
        prop.pop("title", None)
        description = prop.pop("description", "")
        parameters.append(
            {
                "name": name,
                "in": "query",
                "required": name in required,
                "description": description,
                "schema": _without_null(prop),
            }
        )
    return parameters


def _without_null(prop: dict[str, Any]) -> dict[str, Any]:
    """A query parameter is absent or a value: never null."""
    options = [o for o in prop.pop("anyOf", []) if o != {"type": "null"}]
    if len(options) == 1:
        prop = {**options[0], **prop}
    elif options:
        prop["anyOf"] = options
    if prop.get("default", 0) is None:
        del prop["default"]
    return prop


def _responses(op: Operation, components: _Components) -> dict[str, Any]:
    responses = {
        str(status): {"description": text, "content": _content(op, model, components)}
        for status, (model, text) in op.responses.items()
    }
    statuses = {400, 401, 403, 413, 503, *op.errors}
    if op.path_params:
        statuses.add(404)
    if op.body is not None:
        statuses |= {415, 422}
    error = components.schema(ErrorResponse, "serialization")
    for status in sorted(statuses):
        responses[str(status)] = {
            "description": ERRORS[status],
            "content": {"application/json": {"schema": error}},
        }
    return responses


def _content(op: Operation, model: Any, components: _Components) -> dict[str, Any]:
    if model is None:  # 204 No Content
        return {}
    if op.media_type != "application/json":  # bytes, e.g. an image
        return {op.media_type: {"schema": {"type": "string", "contentMediaType": op.media_type}}}
    return {"application/json": {"schema": components.schema(model, "serialization")}}


@bp.get("/openapi.json")
def openapi_json():
    return jsonify(openapi_document(request.script_root))


@bp.get("/docs")
def docs():
    return render_template("api/docs.html")
