"""``/api/daemon-types`` and creating and deleting daemons (``POST|DELETE /api/daemons``).

Routes only parse, call ``daemon_catalog`` (and ``daemon_control`` to start a new daemon at
once) and shape; names, types, configuration and settings are checked in the service.
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import Response, url_for
from pydantic import BaseModel, ConfigDict, Field, JsonValue, StrictBool

from stashhog.api.openapi import route
from stashhog.api.responses import DaemonOut
from stashhog.api.schemas import ActionQuery
from stashhog.services import daemon_catalog, daemon_control, daemon_queries
from stashhog.services.daemon_catalog import DaemonSettings


class DaemonTypeOut(BaseModel):
    type: str = Field(description="The daemon type, as stored in daemons.type.")
    description: str
    config_schema: dict[str, JsonValue] = Field(
        description="The JSON Schema of the type's configuration (types, defaults, bounds)."
    )
    default_configuration: dict[str, JsonValue]
    default_settings: dict[str, JsonValue] = Field(
        description="The settings a new daemon of this type starts with."
    )


class DaemonTypeList(BaseModel):
    types: list[DaemonTypeOut]
    settings_schema: dict[str, JsonValue] = Field(
        description="The JSON Schema of every daemon's settings (restart policy, budget…)."
    )


class DaemonCreate(DaemonSettings):
    """A new daemon: a name, a registered type, and optionally configuration and settings."""

    model_config = ConfigDict(extra="forbid", use_enum_values=True)

    name: str = Field(description="Unique, 1-255 characters once trimmed, not a UUID.")
    type: str = Field(description="A registered daemon type (see GET /api/daemon-types).")
    configuration: dict[str, JsonValue] = Field(
        default_factory=dict, description="Keys of the type's configuration; others default."
    )
    start: StrictBool = Field(False, description="Start the daemon once it is created.")


@route("GET /daemon-types", DaemonTypeList)
def list_daemon_types():
    """Every registered daemon type, with its configuration schema and defaults."""
    return {
        "types": daemon_catalog.daemon_types(),
        "settings_schema": daemon_catalog.settings_schema(),
    }


@route("POST /daemons", DaemonOut, status=201, query=ActionQuery, body=DaemonCreate, errors=(409,))
def create_daemon(body: DaemonCreate, query: ActionQuery):
    """Create a daemon of a registered type.

    It is STOPPED unless ``start`` is true (then ``?wait=`` seconds for it to settle, as for a
    start). The configuration is validated against the type's schema: 422 names the key; an
    unknown type is 422 (key ``type``), a name in use 409."""
    settings = DaemonSettings(**body.model_dump(include=set(DaemonSettings.model_fields)))
    daemon = daemon_catalog.create_daemon(body.name, body.type, body.configuration, settings)
    if body.start:
        daemon_control.start_daemon(uuid.UUID(daemon["id"]), wait=query.wait)
        daemon = daemon_queries.get_daemon(uuid.UUID(daemon["id"]))
    location = url_for("api.get_daemon", daemon_id=daemon["id"])
    return daemon, {"Location": location}


@route("DELETE /daemons/<uuid:daemon_id>", None, status=204, errors=(409,))
def delete_daemon(daemon_id: uuid.UUID) -> Any:
    """Delete a stopped daemon, with its logs and job history.

    409 while it is not STOPPED or ERROR (stop it first). The jobs it launched stay, with
    their daemon link cleared. A deleted daemon is gone: there is no soft delete."""
    daemon_catalog.delete_daemon(daemon_id)
    return Response(status=204)
