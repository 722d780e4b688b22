"""Who may do what: three roles, each with the rights of the one below it.

``viewer`` reads everything; ``operator`` also starts, stops, restarts, edits, creates and
deletes daemons and cancels jobs; ``admin`` also manages users and API tokens.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return ROLE_ORDER.index(self)

    def allows(self, required: Role) -> bool:
        """True when this role has at least the rights of ``required``."""
        return self.rank >= Role(required).rank


ROLE_ORDER = (Role.VIEWER, Role.OPERATOR, Role.ADMIN)


def require(role: Role | str):
    """Declare the role a view needs, when the method's default (viewer to read, operator to
    change; see ``stashhog.auth.policy``) is not the right one."""

    def mark(view):
        view.required_role = Role(role)
        return view

    return mark
