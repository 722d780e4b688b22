"""API tokens: random secrets (``secrets``) for scripts, sent as ``Authorization: Bearer``.

The token is shown once, when created; only its SHA-256 is stored, which is enough for a
secret of 256 random bits (no salt or slow hash needed: nothing to guess). A token acts with
its user's role, and ends when revoked or when its user is deleted.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm.attributes import set_committed_value

from stashhog.auth import audit
from stashhog.auth.models import ApiToken, User
from stashhog.auth.users import access_session, find_user
from stashhog.errors import Invalid, NotFound
from stashhog.extensions import db
from stashhog.serializers import iso

PREFIX = "shd_"
# last_used_at is a hint for the listing; one write a minute per token is plenty.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(name: str, user_ref: uuid.UUID | str) -> tuple[ApiToken, str]:
    """A new token for the user; returns the row and the token text (shown once)."""
    name = name.strip()
    with audit.action("token.create", "token", name=name) as entry:
        if not name or len(name) > 100:
            raise Invalid("token name must be 1 to 100 characters", key="name")
        try:
            user = find_user(user_ref)
        except NotFound:
            raise Invalid(f"no user {str(user_ref)!r}", key="user") from None
        entry.details["user"] = user.username
        text = PREFIX + secrets.token_urlsafe(32)
        token = ApiToken(name=name, user_id=user.id, token_hash=digest(text), prefix=text[:10])
        db.session.add(token)
        db.session.commit()
        entry.target(token.id, name)
        return token, text


def token_to_dict(token: ApiToken, username: str) -> dict[str, Any]:
    return {
        "id": str(token.id),
        "name": token.name,
        "user": username,
        "prefix": token.prefix,
        "created_at": iso(token.created_at),
        "last_used_at": iso(token.last_used_at),
        "revoked_at": iso(token.revoked_at),
    }


def list_tokens(user_ref: uuid.UUID | str | None = None) -> list[tuple[ApiToken, User]]:
    query = select(ApiToken, User).join(User).order_by(User.username, ApiToken.created_at)
    if user_ref is not None:
        query = query.where(ApiToken.user_id == find_user(user_ref).id)
    return [(token, user) for token, user in db.session.execute(query)]


def find_token(ref: uuid.UUID | str) -> ApiToken:
    """A token by id, or by name when exactly one live token has it."""
    if isinstance(ref, uuid.UUID):
        token = db.session.get(ApiToken, ref)
    else:
        matches = db.session.scalars(
            select(ApiToken).where(ApiToken.name == ref, ApiToken.revoked_at.is_(None))
        ).all()
        if len(matches) > 1:
            raise Invalid(f"{len(matches)} tokens are named {ref!r}; give the id", key="token")
        token = matches[0] if matches else None
    if token is None:
        raise NotFound(f"no token {str(ref)!r}")
    return token


def revoke_token(ref: uuid.UUID | str) -> ApiToken:
    """Revoked at once; idempotent. The row stays, so the listing and the audit show it."""
    with audit.action("token.revoke", "token", name=str(ref)) as entry:
        token = find_token(ref)
        entry.target(token.id, token.name)
        if token.revoked_at is None:
            token.revoked_at = datetime.now(UTC)
            db.session.commit()
        return token


def user_for_token(text: str) -> tuple[User, ApiToken] | None:
    """The user a live token belongs to, or None."""
    if not text.startswith(PREFIX):
        return None
    with access_session() as session:
        row = session.execute(
            select(ApiToken, User).join(User).where(ApiToken.token_hash == digest(text))
        ).first()
    if row is None or row[0].revoked_at is not None:
        return None
    token, user = row
    _touch(token)
    return user, token


def _touch(token: ApiToken) -> None:
    now = datetime.now(UTC)
    if token.last_used_at and now - token.last_used_at < LAST_USED_RESOLUTION:
        return
    with db.engine.begin() as conn:
        conn.execute(update(ApiToken).where(ApiToken.id == token.id).values(last_used_at=now))
    set_committed_value(token, "last_used_at", now)  # written already, not by the session
