"""The audit trail: what operators did, written by the services that act.

``action()`` wraps one operator action and records it when it ends: ``ok``, or ``failed``
with the refusal's message (the exception still propagates). Only someone's actions are
recorded, a user's (a request) or the CLI's: the supervisor's own starts and stops are in
each daemon's history instead; and an action inside another (a restart's stop and start,
each daemon of a stop-all) is part of the outer record, not one of its own. The policy
records its own refusals (``denied``). Each record names the actor (``stashhog.auth.actor``),
the address and user agent, the target, and for changes the values before and after.

Records are written on a connection of their own, so a failed action's rolled-back session
cannot take its record with it.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select

from stashhog.auth.actor import SYSTEM, Actor, current_actor
from stashhog.auth.models import AuditEvent
from stashhog.errors import StashHogError
from stashhog.extensions import db
from stashhog.models.types import utcnow
from stashhog.serializers import iso


class Entry:
    """What one action will record; the action fills in the target and changes as it learns
    them."""

    def __init__(self, action: str, target_type: str | None = None, /, **fields: Any) -> None:
        self.action, self.target_type = action, target_type
        self.target_id: str | None = _str(fields.pop("id", None))
        self.target_name: str | None = _str(fields.pop("name", None))
        self.message: str | None = None
        self.details: dict[str, Any] = {k: v for k, v in fields.items() if v is not None}

    def target(self, target_id: object, name: str | None = None) -> None:
        self.target_id, self.target_name = _str(target_id), name or self.target_name

    def change(self, before: Any, after: Any) -> None:
        self.details.update(before=before, after=after)


_inside = contextvars.ContextVar("inside_audited_action", default=False)


def acting() -> bool:
    """Whether what runs now is an action of its own to record: someone's, not nested."""
    return current_actor() is not SYSTEM and not _inside.get()


@contextlib.contextmanager
def action(action: str, target_type: str | None = None, /, **fields: Any) -> Iterator[Entry]:
    """Record the action in the ``with`` block: ``ok`` if it ends normally, ``failed`` if a
    ``StashHogError`` refuses it, ``error`` for anything else. ``fields``: ``id`` and ``name``
    of the target, anything else goes into the record's details."""
    entry = Entry(action, target_type, **fields)
    if not acting():
        yield entry
        return
    outer = _inside.set(True)
    try:
        yield entry
    except StashHogError as exc:
        record(entry, "failed", exc.message)
        raise
    except Exception as exc:
        record(entry, "error", f"{type(exc).__name__}: {exc}"[:500])
        raise
    finally:
        _inside.reset(outer)
    record(entry, "ok", entry.message)


def record(entry: Entry, outcome: str, message: str | None = None, actor: Actor | None = None):
    actor = actor or current_actor()
    values = {
        "created_at": utcnow(),
        "actor": actor.name[:255],
        "actor_via": actor.via_label or None,
        "actor_role": str(actor.role) if actor.role else None,
        "action": entry.action,
        "target_type": entry.target_type,
        "target_id": entry.target_id,
        "target_name": (entry.target_name or "")[:255] or None,
        "outcome": outcome,
        "message": message,
        "address": actor.address,
        "user_agent": actor.user_agent,
        "details": entry.details,
    }
    with db.engine.begin() as conn:
        conn.execute(insert(AuditEvent.__table__).values(**values))


def list_events(
    *,
    actor: str | None = None,
    action: str | None = None,
    target: str | None = None,
    outcome: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> list[AuditEvent]:
    """Newest first; ``before_id`` pages back. ``action`` matches a prefix ("daemon."),
    ``target`` a target's id or name."""
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if actor:
        query = query.where(AuditEvent.actor == actor)
    if action:
        query = query.where(AuditEvent.action.startswith(action, autoescape=True))
    if target:
        query = query.where((AuditEvent.target_id == target) | (AuditEvent.target_name == target))
    if outcome:
        query = query.where(AuditEvent.outcome == outcome)
    if since:
        query = query.where(AuditEvent.created_at >= since)
    if until:
        query = query.where(AuditEvent.created_at < until)
    if before_id:
        query = query.where(AuditEvent.id < before_id)
    return list(db.session.scalars(query))


def event_to_dict(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "created_at": iso(event.created_at),
        "actor": event.actor,
        "actor_via": event.actor_via,
        "actor_role": event.actor_role,
        "action": event.action,
        "target_type": event.target_type,
        "target_id": event.target_id,
        "target_name": event.target_name,
        "outcome": event.outcome,
        "message": event.message,
        "address": event.address,
        "user_agent": event.user_agent,
        "details": event.details or {},
    }


def _str(value: object) -> str | None:
    return None if value is None else str(value)
