"""Pydantic models of the access API: the audit trail, users, tokens and the caller's own
session (and so their part of the OpenAPI document)."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import AwareDatetime, Field, JsonValue, field_validator

from stashhog.api.responses import Out
from stashhog.api.schemas import MAX_ID, NAME_PATTERN, Body, Query, Timestamp
from stashhog.auth.roles import Role

Outcome = Literal["ok", "failed", "error", "denied"]


def _no_nul(value: str | None) -> str | None:
    if value is not None and "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


class AuditQuery(Query):
    actor: str | None = Field(None, max_length=255, description="Only this actor (a username, "
                              "cli:<os user> or system).")  # fmt: skip
    action: str | None = Field(
        None, max_length=50, description='Actions starting with this, e.g. "daemon." or "login".'
    )
    target: str | None = Field(None, max_length=255, description="A target's id or name.")
    outcome: Outcome | None = Field(None, description="Only this outcome.")
    since: Timestamp | None = Field(None, description="Records at or after this time.")
    until: Timestamp | None = Field(None, description="Records before this time.")
    before_id: int | None = Field(
        None, ge=1, le=MAX_ID, description="Records older than this id: the `next_before_id` "
        "of the previous page."
    )  # fmt: skip
    limit: int = Field(100, ge=1, le=1000, description="At most this many records, newest first.")

    _text = field_validator("actor", "action", "target")(_no_nul)


class AuditEventOut(Out):
    id: int
    created_at: AwareDatetime
    actor: str = Field(description="Who acted: a username, cli:<os user>, system, anonymous.")
    actor_via: str | None = Field(description='How they signed in: "session", "token:<name>", '
                                  '"cli".')  # fmt: skip
    actor_role: Role | None
    action: str = Field(description='What was done, e.g. "daemon.start", "login".')
    target_type: str | None
    target_id: str | None
    target_name: str | None
    outcome: Outcome = Field(description="ok; failed (refused by the service); error; denied "
                             "(refused by the access policy).")  # fmt: skip
    message: str | None
    address: str | None = Field(description="The client's address.")
    user_agent: str | None
    details: dict[str, JsonValue] = Field(
        description="E.g. `before` and `after` for a change (secret keys masked)."
    )


class AuditList(Out):
    events: list[AuditEventOut]
    next_before_id: int | None = Field(description="Pass as `before_id` for the next page; "
                                       "null on the last one.")  # fmt: skip


class UserOut(Out):
    id: uuid.UUID
    username: str
    role: Role
    created_at: AwareDatetime
    last_login_at: AwareDatetime | None


class UserList(Out):
    users: list[UserOut]


class UserCreate(Body):
    username: str = Field(min_length=1, max_length=100, pattern=NAME_PATTERN)
    password: str = Field(min_length=8, max_length=1000, json_schema_extra={"writeOnly": True})
    role: Role = Field(Role.VIEWER, strict=False, description="viewer, operator or admin.")


class UserUpdate(Body):
    """Fields left out stay as they are; a new password signs out the user's sessions."""

    role: Role | None = Field(None, strict=False, description="viewer, operator or admin.")
    password: str | None = Field(
        None, min_length=8, max_length=1000, json_schema_extra={"writeOnly": True}
    )


class TokenOut(Out):
    id: uuid.UUID
    name: str
    user: str = Field(description="The user the token acts as (with that user's role).")
    prefix: str = Field(description="The token's first characters, to tell tokens apart.")
    created_at: AwareDatetime
    last_used_at: AwareDatetime | None
    revoked_at: AwareDatetime | None


class TokenList(Out):
    tokens: list[TokenOut]


class TokenCreate(Body):
    name: str = Field(min_length=1, max_length=100, pattern=NAME_PATTERN)
    user: str = Field(min_length=1, max_length=100, description="The username it acts as.")


class TokenCreated(TokenOut):
    token: str = Field(description="Send as `Authorization: Bearer <token>`; shown only now.")


class SessionOut(Out):
    user: str
    role: Role
    via: str = Field(description='"session" (the cookie) or "token".')
