"""``GET /api/daemons/dependencies``: the dependency graph, for the panel's view and the CLI.

The route only shapes ``daemon_dependencies.describe_graph``; editing a daemon's
``depends_on`` is a ``PUT /api/daemons/{id}`` like any setting.
"""

from __future__ import annotations

import uuid

from pydantic import Field

from stashhog.api.openapi import route
from stashhog.api.responses import Out
from stashhog.models import DaemonStatus
from stashhog.services import daemon_dependencies


class DaemonRef(Out):
    id: uuid.UUID
    name: str


class DependencyNode(DaemonRef):
    status: DaemonStatus
    depth: int = Field(description="0: needs nothing; else one more than the deepest it needs.")
    needs: list[DaemonRef] = Field(description="Its depends_on.")
    needed_by: list[DaemonRef] = Field(description="The daemons whose depends_on lists it.")


class DependencyGraph(Out):
    daemons: list[DependencyNode] = Field(description="Every daemon, in start order.")
    edges: int = Field(description="How many dependencies there are in all.")


@route("GET /daemons/dependencies", DependencyGraph)
def daemon_dependency_graph():
    """Every daemon in start order, with what it needs and what needs it.

    A daemon comes after everything it depends on; ``depth`` groups them (0 needs nothing)."""
    return daemon_dependencies.describe_graph()
