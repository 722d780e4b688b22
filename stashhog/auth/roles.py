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
