"""Redis: the shared client, channel and key names, and publishing of live events.

Every event is one JSON object with a ``type`` (see ``EventType``) and a ``daemon_id`` (or
null); the README documents each payload. Broadcast events go to one channel that every web
process subscribes to; per-daemon events (logs, job actions) to a channel of their own.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

import redis
from flask import Flask, current_app


class EventType(StrEnum):
    DAEMON_LOG = "daemon_log"
    DAEMON_STATUS = "daemon_status"
    DAEMON_JOB_ACTION = "daemon_job_action"
    DAEMON_UPDATE = "daemon_update"
    DAEMON_CREATED = "daemon_created"
    DAEMON_DELETED = "daemon_deleted"
    JOB_UPDATE = "job_update"
    ALERT_UPDATE = "alert_update"
    DAEMON_LIMIT = "daemon_limit"


# Sent only to subscribers of the daemon; everything else goes to every client.
PER_DAEMON_EVENTS = {EventType.DAEMON_LOG, EventType.DAEMON_JOB_ACTION}


def init_app(app: Flask) -> None:
    app.extensions["redis"] = redis.Redis.from_url(
        app.config["REDIS_URL"], socket_connect_timeout=2, socket_timeout=5
    )


def get_redis() -> redis.Redis:
    return current_app.extensions["redis"]


def key(*parts: object) -> str:
    """A Redis key or channel name under this install's prefix."""
    return ":".join([current_app.config["REDIS_PREFIX"], *map(str, parts)])


def event_channel(event_type: str, daemon_id: object | None = None) -> str:
    if event_type in PER_DAEMON_EVENTS:
        return key("events", "daemon", daemon_id)
    return key("events", "all")


def event_pattern() -> str:
    """The pattern one relay subscriber per web process listens on."""
    return key("events", "*")


def encode_event(event_type: str, daemon_id: object | None, **fields: Any) -> str:
    payload = {"type": str(event_type), "daemon_id": str(daemon_id) if daemon_id else None}
    payload.update(fields)
    return json.dumps(payload, default=str)


def publish(event_type: str, daemon_id: object | None = None, **fields: Any) -> None:
    """Publish one live event. Pub/sub is best effort: the database is the record."""
    message = encode_event(event_type, daemon_id, **fields)
    try:
        get_redis().publish(event_channel(event_type, daemon_id), message)
    except redis.RedisError:
        current_app.logger.warning("could not publish %s event", event_type)
