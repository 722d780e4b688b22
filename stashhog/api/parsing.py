"""Request parsing for the API: query parameters and JSON bodies, each checked
against the pydantic models of ``stashhog.api.schemas``.

Malformed input is a 400 (bad JSON, a body that is not an object, an unknown or invalid query
parameter), a body field that breaks its schema a 422 naming the key.
Strings PostgreSQL cannot store (NUL, lone surrogates) and non-finite numbers are refused here,
so they never reach the database as a 500.
"""

from __future__ import annotations

import json
import math
import reprlib
from typing import Any

from flask import current_app, request
from pydantic import BaseModel, TypeAdapter, ValidationError
from werkzeug.exceptions import RequestEntityTooLarge

from stashhog.errors import ApiError


def refuse_large_body() -> None:
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    if limit is not None and (request.content_length or 0) > limit:
        raise RequestEntityTooLarge()


def parse_query(model: type[BaseModel]) -> BaseModel:
    """Query parameters, each at most once, validated by ``model``; 400 names the parameter."""
    for name, values in request.args.lists():
        if len(values) > 1:
            raise _bad_parameter(name, "given more than once")
    try:
        return model.model_validate(request.args.to_dict())
    except ValidationError as exc:
        error = exc.errors()[0]
        name = str(error["loc"][0]) if error["loc"] else ""
        unknown = error["type"] == "extra_forbidden"
        raise _bad_parameter(
            name, "unknown parameter" if unknown else error["msg"].removeprefix("Value error, ")
        ) from None


def _bad_parameter(name: str, message: str) -> ApiError:
    name = reprlib.repr(name)[1:-1] if len(name) > 60 else name
    return ApiError(400, "invalid_parameter", f"{name}: {message}", parameter=name)


def parse_body(schema: Any, *, required: bool) -> Any:
    """The JSON object body validated by ``schema``; 422 names the offending key."""
    data = read_json_object(required)
    if data is None:
        return None
    union = isinstance(schema, TypeAdapter)
    try:
        return schema.validate_python(data) if union else schema.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = [str(part) for part in error["loc"]][1 if union else 0 :]
        key = ".".join(loc) or ("type" if union else "body")
        message = (
            "unknown field"
            if error["type"] == "extra_forbidden"
            else error["msg"].removeprefix("Value error, ")
        )
        root = key.split(".")[0]
        code = f"invalid_{root}" if root in ("configuration", "metadata") else "invalid"
        raise ApiError(422, code, f"{key}: {message}", key=key) from None


def read_json_object(required: bool) -> dict | None:
    raw = request.get_data(cache=True)
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    if limit is not None and request.content_length is None and len(raw) >= limit:
        # A chunked body is cut at the limit without an error; more to come means too large.
        if request.stream.read(1):
            raise RequestEntityTooLarge()
    if not raw:
        if required:
            raise ApiError(400, "malformed_request", "a JSON object body is required")
        return None
    if not request.is_json:
        raise ApiError(415, "unsupported_media_type", "send the body as application/json")
    try:
        data = json.loads(raw, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:
        raise ApiError(400, "malformed_json", f"the body is not valid JSON: {exc}") from None
    _refuse_unstorable(data)
    if not isinstance(data, dict):
        raise ApiError(400, "malformed_request", "the body must be a JSON object")
    return data


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def _refuse_unstorable(data: Any) -> None:
    """PostgreSQL cannot store NUL characters, lone surrogates or infinite numbers."""
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str) and ("\x00" in item or not _is_utf8(item)):
            raise ApiError(400, "malformed_json", "strings must not contain NUL or surrogates")
        elif isinstance(item, float) and not math.isfinite(item):
            raise ApiError(400, "malformed_json", "numbers must be finite")


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
