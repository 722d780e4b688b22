"""The access API: ``GET /api/audit`` (every role), ``GET /api/session`` (who am I), and
users and tokens (admin only). Routes parse and shape; ``users``, ``tokens`` and ``audit``
do the work and record it."""

from __future__ import annotations

import uuid

from flask import Response, g

from stashhog.api.openapi import route
from stashhog.auth import tokens, users
from stashhog.auth.audit import event_to_dict, list_events
from stashhog.auth.roles import Role, require
from stashhog.auth.schemas import (
    AuditList,
    AuditQuery,
    SessionOut,
    TokenCreate,
    TokenCreated,
    TokenList,
    UserCreate,
    UserList,
    UserOut,
    UserUpdate,
)
from stashhog.auth.tokens import token_to_dict
from stashhog.auth.users import user_to_dict


@route("GET /audit", AuditList, query=AuditQuery)
def list_audit(query: AuditQuery):
    """What operators did: who, when, from where, on what, and the outcome.

    Filters combine; `before_id` pages back (pass the response's `next_before_id`)."""
    events = list_events(**query.model_dump(exclude_none=True))
    next_before = events[-1].id if len(events) == query.limit else None
    return {"events": [event_to_dict(e) for e in events], "next_before_id": next_before}


@route("GET /session", SessionOut)
def get_session():
    """Who the request acts as: the user, their role, and how they signed in."""
    return {"user": g.actor.name, "role": g.actor.role, "via": g.actor.via}


@require(Role.ADMIN)
@route("GET /users", UserList)
def list_users():
    """Every user with their role."""
    return {"users": [user_to_dict(user) for user in users.list_users()]}


@require(Role.ADMIN)
@route("POST /users", UserOut, status=201, body=UserCreate, errors=(409,))
def create_user(body: UserCreate):
    """Create a user who signs in with a username and password."""
    return user_to_dict(users.create_user(body.username, body.password, body.role))


@require(Role.ADMIN)
@route("PATCH /users/<uuid:user_id>", UserOut, body=UserUpdate, errors=(409,))
def update_user(user_id: uuid.UUID, body: UserUpdate):
    """Change a user's role or password (a new password ends their sessions)."""
    user = users.find_user(user_id)
    if body.role is not None:
        user = users.set_role(user_id, body.role)
    if body.password is not None:
        user = users.set_password(user_id, body.password)
    return user_to_dict(user)


@require(Role.ADMIN)
@route("DELETE /users/<uuid:user_id>", None, status=204, errors=(409,))
def delete_user(user_id: uuid.UUID):
    """Delete a user: their sessions and tokens end at once. The last admin stays."""
    users.delete_user(user_id)
    return Response(status=204)


@require(Role.ADMIN)
@route("GET /tokens", TokenList)
def list_tokens():
    """Every API token (never its text), with its user and state."""
    return {"tokens": [token_to_dict(t, u.username) for t, u in tokens.list_tokens()]}


@require(Role.ADMIN)
@route("POST /tokens", TokenCreated, status=201, body=TokenCreate, errors=(409,))
def create_token(body: TokenCreate):
    """Create a token acting as a user; the response is the only time its text is shown."""
    token, text = tokens.create_token(body.name, body.user)
    return {**token_to_dict(token, body.user), "token": text}


@require(Role.ADMIN)
@route("DELETE /tokens/<uuid:token_id>", None, status=204)
def revoke_token(token_id: uuid.UUID):
    """Revoke a token: requests carrying it are refused from now on."""
    tokens.revoke_token(token_id)
    return Response(status=204)
