"""Notification channels and the ``ALERT_NOTIFY`` job that delivers a group of alert events
to one channel: a webhook (JSON POST) or an apprise URL (mail, chat, push).

A delivery runs on the ``jobs`` queue, never in the supervisor pass: each attempt is written
to ``alert_deliveries`` (status code or error), a failure is retried with backoff doubling
from 1 s to ``ALERT_RETRY_CAP``, and after ``ALERT_ATTEMPTS`` the job fails (its record says
why).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime
from typing import Any

from flask import current_app
from pydantic import Field
from sqlalchemy import delete, insert, select

from stashhog.errors import Invalid, NotFound
from stashhog.extensions import db
from stashhog.jobs import JobContext, JobMetadata, register_job
from stashhog.models import Alert, AlertChannel, AlertDelivery, JobType
from stashhog.serializers import iso

channels = AlertChannel.__table__
deliveries = AlertDelivery.__table__
alerts = Alert.__table__
TIMEOUT = 10.0


class NotifyMetadata(JobMetadata):
    channel_id: str
    events: list[dict] = Field(default_factory=list)


@register_job(JobType.ALERT_NOTIFY, NotifyMetadata)
def run_notify_job(ctx: JobContext) -> dict:
    meta: NotifyMetadata = ctx.metadata
    channel = _channel(meta.channel_id)
    if channel is None:
        return {"skipped": "channel deleted"}
    payload = notification(meta.events)
    config = current_app.config
    for attempt in range(1, config["ALERT_ATTEMPTS"] + 1):
        ok, code, error = send(channel, payload)
        _record(channel.id, ctx.job_id, attempt, ok, code, error, meta.events)
        if ok:
            return {"attempts": attempt, "status_code": code}
        if attempt < config["ALERT_ATTEMPTS"]:
            ctx.sleep(min(2 ** (attempt - 1), config["ALERT_RETRY_CAP"]))
    raise RuntimeError(f"{channel.type} delivery failed {attempt} times: {error}")


def notification(events: list[dict]) -> dict[str, Any]:
    """The JSON a webhook receives: each event with its alert as it is now."""
    ids = [uuid.UUID(event["alert_id"]) for event in events]
    with db.engine.connect() as conn:
        rows = {row.id: row for row in conn.execute(select(alerts).where(alerts.c.id.in_(ids)))}
    items = []
    for event in events:
        row = rows.get(uuid.UUID(event["alert_id"]))
        if row is not None:
            items.append({"event": event["event"], "alert_id": str(row.id), "rule": row.rule,
                          "daemon_id": str(row.daemon_id) if row.daemon_id else None,
                          "message": row.message, "value": row.value,
                          "started_at": iso(row.started_at),
                          "resolved_at": iso(row.resolved_at)})  # fmt: skip
    firing = sum(1 for item in items if item["event"] == "firing")
    title = f"StashHog: {firing} firing, {len(items) - firing} resolved"
    return {"source": "stashhog", "title": title, "events": items}


def send(channel: Any, payload: dict) -> tuple[bool, int | None, str | None]:
    """One attempt: (delivered, HTTP status code if any, error text)."""
    if channel.type == "apprise":
        return _send_apprise(channel.url, payload)
    request = urllib.request.Request(
        channel.url, data=json.dumps(payload).encode(), method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "stashhog-alerts"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return True, response.status, None
    except urllib.error.HTTPError as exc:
        return False, exc.code, f"HTTP {exc.code}"
    except (OSError, ValueError) as exc:
        return False, None, f"{type(exc).__name__}: {exc}"


def _send_apprise(url: str, payload: dict) -> tuple[bool, int | None, str | None]:
    import apprise  # imported on use: it loads every plugin

    notifier = apprise.Apprise()
    if not notifier.add(url):
        return False, None, "apprise does not understand this URL"
    body = "\n".join(f"[{e['event']}] {e['message']}" for e in payload["events"])
    ok = notifier.notify(title=payload["title"], body=body or payload["title"])
    return bool(ok), None, None if ok else "apprise reported a failed notification"


def _record(channel_id, job_id, attempt, ok, code, error, events) -> None:
    with db.engine.begin() as conn:
        conn.execute(insert(deliveries).values(
            channel_id=channel_id, job_id=job_id, attempt=attempt, ok=ok, status_code=code,
            error=error, events=events, created_at=datetime.now(UTC)))  # fmt: skip


def _channel(channel_id: str | uuid.UUID) -> Any:
    with db.engine.connect() as conn:
        query = select(channels).where(channels.c.id == uuid.UUID(str(channel_id)))
        return conn.execute(query).first()


# -- channels --------------------------------------------------------------------------------


def add_channel(channel_type: str, url: str) -> dict[str, Any]:
    if channel_type == "webhook" and not url.startswith(("http://", "https://")):
        raise Invalid("a webhook URL starts with http:// or https://", key="url")
    if channel_type == "apprise":
        import apprise

        if apprise.Apprise.instantiate(url) is None:
            raise Invalid("apprise does not understand this URL", key="url")
    values = {"id": uuid.uuid4(), "type": channel_type, "url": url, "created_at": datetime.now(UTC)}
    with db.engine.begin() as conn:
        conn.execute(insert(channels).values(**values))
    return channel_to_dict(_channel(values["id"]))


def list_channels() -> list[dict[str, Any]]:
    with db.engine.connect() as conn:
        rows = conn.execute(select(channels).order_by(channels.c.created_at)).all()
    return [channel_to_dict(row) for row in rows]


def remove_channel(channel_id: uuid.UUID) -> dict[str, Any]:
    row = _channel(channel_id)
    if row is None:
        raise NotFound(f"no channel {channel_id}")
    with db.engine.begin() as conn:
        conn.execute(delete(channels).where(channels.c.id == channel_id))
    return channel_to_dict(row)


def channel_to_dict(row: Any) -> dict[str, Any]:
    return {"id": str(row.id), "type": row.type, "url": row.url,
            "created_at": iso(row.created_at)}  # fmt: skip


def list_deliveries(channel_id: uuid.UUID, limit: int = 100) -> list[dict[str, Any]]:
    if _channel(channel_id) is None:
        raise NotFound(f"no channel {channel_id}")
    query = (
        select(deliveries).where(deliveries.c.channel_id == channel_id)
        .order_by(deliveries.c.id.desc()).limit(limit)
    )  # fmt: skip
    with db.engine.connect() as conn:
        rows = conn.execute(query).all()
    return [{**row._asdict(), "channel_id": str(row.channel_id),
             "job_id": str(row.job_id) if row.job_id else None,
             "created_at": iso(row.created_at)} for row in rows]  # fmt: skip
