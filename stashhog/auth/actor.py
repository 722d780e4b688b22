"""Who is acting: the actor the audit trail names, set once per request by the policy
(``flask.g.actor``) or once per process by the CLI, so services never take it as an argument.
"""

from __future__ import annotations

import getpass
import uuid
from dataclasses import dataclass

from flask import g, has_request_context, request

from stashhog.auth.roles import Role


@dataclass(frozen=True)
class Actor:
    name: str
    role: Role | None = None
    user_id: uuid.UUID | None = None
    # How the actor proved who they are: "session", "token", "cli", or "" (nobody).
    via: str = ""
    token_name: str | None = None
    token_id: uuid.UUID | None = None
    address: str | None = None
    user_agent: str | None = None

    @property
    def label(self) -> str:
        """As the audit trail and the daemon's log name the actor."""
        if self.token_name:
            return f"{self.name} (token {self.token_name})"
        return self.name

    @property
    def via_label(self) -> str:
        """How the actor signed in, as the audit trail stores it: "token:ci", "session"."""
        return f"token:{self.token_name}" if self.token_name else self.via

    @property
    def authenticated(self) -> bool:
        return self.role is not None


SYSTEM = Actor("system", via="system")
_process_actor: Actor | None = None


def request_actor(**fields) -> Actor:
    """An actor for the current request: its address and user agent, plus ``fields``."""
    agent = request.user_agent.string[:512] or None
    return Actor(address=request.remote_addr, user_agent=agent, **{"name": "anonymous", **fields})


def current_actor() -> Actor:
    if has_request_context():
        actor = g.get("actor")
        return actor if actor is not None else request_actor()
    return _process_actor or SYSTEM


def use_cli_actor() -> None:
    """From here on, this process acts as the local OS user (``cli:<user>``) with every
    right: whoever runs the CLI can reach the database anyway."""
    global _process_actor
    _process_actor = Actor(f"cli:{_os_user()}", role=Role.ADMIN, via="cli")


def forget_cli_actor() -> None:
    """Back to acting as the system (tests run CLI commands inside one long process)."""
    global _process_actor
    _process_actor = None


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
