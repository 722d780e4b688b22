"""What the OpenAPI document says about the routes ``route()`` does not register: the health
checks (open, answered without credentials) and the live WebSocket (``stashhog.relay``), whose
messages are described under the ``x-websocket`` extension and in prose."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from stashhog.events import EventType


class Described(BaseModel):
    """(Named apart from ``stashhog.api.responses``: components are keyed by class name.)"""

    model_config = ConfigDict(extra="forbid")


class SystemHealthPart(Described):
    ok: bool
    dialect: str | None = Field(None, description="The database's dialect (database only).")
    error: str | None = Field(None, description="Why the part fails, when it does.")


class SystemHealthQueue(Described):
    ok: bool = Field(description="At least one worker consumes the queue.")
    workers: list[str] = Field(description="The workers that consume it.")
    error: str | None = None


class WorkerSlots(Described):
    busy: int = Field(description="Slots running a daemon (its lease held).")
    slots: int = Field(description="The worker's pool size (max-concurrency).")


class DaemonSlots(Described):
    busy: int
    slots: int
    full: bool = Field(description="No slot is free: a new start ends ERROR, saying so.")
    workers: dict[str, WorkerSlots] = Field(description="By daemons worker.")


class SystemHealth(Described):
    status: Literal["ok", "unhealthy"]
    failing: list[str] = Field(description='Failing parts: "database", "redis", "queue:jobs"…')
    warnings: list[str] = Field(
        description='Conditions that leave the system ready, such as "daemons workers are '
        'full (4 of 4 slots busy)": running daemons are fine, new starts fail.'
    )
    database: SystemHealthPart
    redis: SystemHealthPart
    queues: dict[str, SystemHealthQueue] = Field(description="The daemons and jobs queues.")
    daemon_slots: DaemonSlots | None = Field(
        description="The daemons workers' slots; null until their pool sizes are known."
    )


class SystemLiveness(Described):
    status: Literal["ok"]


class SocketCommand(Described):
    command: Literal["subscribe", "unsubscribe"]
    daemon_id: uuid.UUID


class SocketPing(Described):
    type: Literal["ping"]


class SocketReply(Described):
    type: Literal["pong", "subscription_confirmed", "unsubscription_confirmed", "error"]
    daemon_id: uuid.UUID | None = Field(None, description="The daemon a confirmation is for.")
    message: str | None = Field(None, description="What was wrong (error only).")
    command: str | None = Field(None, description="The command an error answers, if any.")


class SocketEvent(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: Literal[tuple(str(kind) for kind in EventType) + ("resync",)]  # type: ignore[misc]
    daemon_id: uuid.UUID | None = Field(description="The daemon it concerns, if one.")


# The socket's messages: what a client sends, and what it receives.
SENT = (SocketCommand, SocketPing)
RECEIVED = (SocketReply, SocketEvent)
SOCKET_DESCRIPTION = """\
Upgrade to a WebSocket (`ws://` or `wss://`, the same credentials as the rest of the API;
a cookie-carried socket must come from the panel's own `Origin`). Every message is one JSON
object.

The client sends `{"command": "subscribe", "daemon_id": "<uuid>"}` (or `"unsubscribe"`) to
follow one daemon's logs and job actions, and `{"type": "ping"}` at will. Each command is
answered in order: `subscription_confirmed` / `unsubscription_confirmed` with the
`daemon_id`, `pong`, or `{"type": "error", "message": ...}` (a bad message never closes the
socket).

The server sends events `{"type": ..., "daemon_id": ..., ...}`: to every client
`daemon_status`, `daemon_update`, `daemon_created`, `daemon_deleted`, `job_update` and
`alert_update`; to a daemon's subscribers only `daemon_log` (`lines`, up to 500) and
`daemon_job_action`; and `resync` when the relay lost Redis for a while (events may have been
missed: read again from the REST API). The fields of each event are those of the matching
REST resource (`daemon`, `job`, `alert`, `lines`).

Limits: a message at most `STASHHOG_WS_MAX_MESSAGE_BYTES` (larger closes with 1009), at most
`STASHHOG_WS_MAX_SUBSCRIPTIONS` daemons per socket, at most `STASHHOG_MAX_WEBSOCKETS` sockets
per web process (more: 503 before the upgrade); a client too far behind is disconnected;
the server pings every 25 s. "Try it out" cannot open a socket: use a WebSocket client."""


def described_paths(components: Any, error: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Path items for ``paths``; ``components`` collects the models' schemas."""

    def answer(model: type[BaseModel], text: str) -> dict[str, Any]:
        schema = components.schema(model, "serialization")
        return {"description": text, "content": {"application/json": {"schema": schema}}}

    def refusal(text: str) -> dict[str, Any]:
        return {"description": text, "content": {"application/json": {"schema": error}}}

    readiness = answer(SystemHealth, "Every part is served.")
    return {
        "/api/health": {"get": {
            "operationId": "health", "tags": ["health"], "security": [],
            "summary": "Readiness: database, Redis, and a worker on each queue.",
            "description": "Answered without credentials (for load balancers and probes). The "
            "worker inspection behind it is reused for 2 s.",
            "responses": {"200": readiness,
                          "503": {**answer(SystemHealth, "A part fails; `failing` names it.")}},
        }},
        "/api/health/live": {"get": {
            "operationId": "health_live", "tags": ["health"], "security": [],
            "summary": "Liveness: the web process answers.",
            "description": "Touches no database, Redis or broker; answered without credentials.",
            "responses": {"200": answer(SystemLiveness, "The process is up.")},
        }},
        "/api/daemons/ws": {"get": {
            "operationId": "daemons_ws", "tags": ["live"],
            "summary": "Live events over a WebSocket.",
            "description": SOCKET_DESCRIPTION,
            "responses": {
                "101": {"description": "Switching Protocols: the socket is open."},
                "401": refusal("No credentials, or a token that is unknown or revoked."),
                "403": refusal("The Origin header names another site."),
                "503": refusal("This web process holds as many sockets as it may."),
            },
            "x-websocket": {
                "client-messages": [components.schema(m, "validation") for m in SENT],
                "server-messages": [components.schema(m, "serialization") for m in RECEIVED],
            },
        }},
    }  # fmt: skip
