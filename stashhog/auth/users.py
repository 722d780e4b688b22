"""Users: create, list, delete, change role or password, and check a login.

Every change is recorded in the audit trail by the function that makes it. Passwords are
hashed with werkzeug (scrypt); checking a login costs one hash whether or not the user
exists, so the answer and its timing are the same for an unknown user and a wrong password.
"""

from __future__ import annotations

import functools
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from stashhog.auth import audit
from stashhog.auth.models import User, new_nonce
from stashhog.auth.roles import Role
from stashhog.errors import Conflict, Invalid, NotFound
from stashhog.extensions import db
from stashhog.serializers import iso

MIN_PASSWORD_LENGTH = 8


@functools.cache
def _unknown_user_hash() -> str:
    """Compared against when the user does not exist, so that path costs a hash as well."""
    return generate_password_hash("no such user: timing equaliser")


def parse_role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError:
        choices = ", ".join(Role)
        raise Invalid(f"unknown role {role!r}; one of {choices}", key="role") from None


def check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise Invalid(f"password must be at least {MIN_PASSWORD_LENGTH} characters", key="password")


def find_user(ref: uuid.UUID | str) -> User:
    """A user by id or username; ``NotFound`` otherwise."""
    user = None
    if isinstance(ref, uuid.UUID):
        user = db.session.get(User, ref)
    else:
        user = db.session.scalars(select(User).where(User.username == ref)).first()
    if user is None:
        raise NotFound(f"no user {str(ref)!r}")
    return user


def user_to_dict(user: User) -> dict[str, Any]:
    return {
        "id": str(user.id),
        "username": user.username,
        "role": user.role,
        "created_at": iso(user.created_at),
        "last_login_at": iso(user.last_login_at),
    }


def list_users() -> list[User]:
    return list(db.session.scalars(select(User).order_by(User.username)))


def count_users() -> int:
    return db.session.scalar(select(func.count()).select_from(User)) or 0


def create_user(username: str, password: str, role: str = Role.VIEWER) -> User:
    username = username.strip()
    with audit.action("user.create", "user", name=username, after={"role": str(role)}) as entry:
        if not username or len(username) > 100:
            raise Invalid("username must be 1 to 100 characters", key="username")
        role = parse_role(role)
        check_password_rules(password)
        if db.session.scalars(select(User).where(User.username == username)).first():
            raise Conflict(f"a user named {username!r} already exists", key="username")
        user = User(username=username, password_hash=generate_password_hash(password), role=role)
        db.session.add(user)
        db.session.commit()
        entry.target(user.id, user.username)
        return user


def delete_user(ref: uuid.UUID | str) -> None:
    with audit.action("user.delete", "user", name=str(ref)) as entry:
        user = find_user(ref)
        entry.target(user.id, user.username)
        _keep_an_admin(user, Role.VIEWER)
        db.session.delete(user)
        db.session.commit()


def set_role(ref: uuid.UUID | str, role: str) -> User:
    with audit.action("user.set_role", "user", name=str(ref)) as entry:
        user = find_user(ref)
        entry.target(user.id, user.username)
        new_role = parse_role(role)
        entry.change({"role": user.role}, {"role": str(new_role)})
        _keep_an_admin(user, new_role)
        user.role = new_role
        db.session.commit()
        return user


def set_password(ref: uuid.UUID | str, password: str) -> User:
    """A new password, and a new session nonce: the user's open sessions end."""
    with audit.action("user.set_password", "user", name=str(ref)) as entry:
        user = find_user(ref)
        entry.target(user.id, user.username)
        check_password_rules(password)
        user.password_hash = generate_password_hash(password)
        user.session_nonce = new_nonce()
        db.session.commit()
        return user


def _keep_an_admin(user: User, new_role: Role) -> None:
    """Refuse to demote or delete the last admin: nobody could manage users any more."""
    if user.role != Role.ADMIN or new_role == Role.ADMIN:
        return
    admins = db.session.scalar(select(func.count()).where(User.role == Role.ADMIN))
    if admins <= 1:
        raise Conflict("this is the last admin; make another user admin first")


def authenticate(username: str, password: str) -> User | None:
    """The user if the password is theirs, else None (unknown user or wrong password)."""
    user = db.session.scalars(select(User).where(User.username == username)).first()
    if user is None:
        check_password_hash(_unknown_user_hash(), password)
        return None
    if not check_password_hash(user.password_hash, password):
        return None
    user.last_login_at = datetime.now(UTC)
    db.session.commit()
    return user


def load_session_user(session_id: str) -> User | None:
    """Flask-Login's user loader: the session holds ``<id>:<nonce>``; a nonce that changed
    since (a new password) or a deleted user means no user. Read on a session of its own
    (``access_session``), so checking access never touches the request's own session."""
    user_id, _, nonce = session_id.partition(":")
    try:
        key = uuid.UUID(user_id)
    except ValueError:
        return None
    with access_session() as session:
        user = session.get(User, key)
    if user is None or user.session_nonce != nonce:
        return None
    return user


def access_session() -> Session:
    """A short database session for the access checks: closed (its connection back in the
    pool) before the request goes on, which matters for a WebSocket that stays open for
    hours; its rows stay readable afterwards."""
    return Session(db.engine, expire_on_commit=False)
