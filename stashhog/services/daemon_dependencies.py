"""Dependencies between daemons (``depends_on``): the one place that knows the graph.

A daemon's ``depends_on`` lists the ids of the daemons it needs (systemd's ``Requires=`` with
``After=``). They start first, and it starts only once each is *ready*: RUNNING, holding its
lease, healthy, and with a heartbeat since its start (the claim alone only says a worker took
it; a heartbeat says its event loop runs). Its dependents stop before it does. The graph stays
acyclic: an edit naming no daemon, the daemon itself or closing a cycle is refused (422, the
cycle named), and a daemon that others need cannot be deleted (409, naming them).

This module reads and checks the graph; ``daemon_control`` (start, stop, restart, in order) and
the supervisor (holding a dependent until its dependencies are ready) act on it.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from flask import current_app
from redis.exceptions import RedisError
from sqlalchemy import select
from sqlalchemy.engine import Connection, Row

from stashhog.errors import Conflict, Invalid
from stashhog.extensions import db
from stashhog.models import Daemon, DaemonStatus, DesiredState
from stashhog.models.enums import LIVE_STATES
from stashhog.services.daemon_health import HEALTHY, daemon_health
from stashhog.services.lease import lease_holders, lease_remaining, renewal_interval

daemons = Daemon.__table__
KEY = "depends_on"
MAX_DEPENDENCIES = 100
# Scheduling jitter a renewal may have (2 cores under load) before it counts as missed.
RENEWAL_SLACK = 0.5
# Any constant both edits of the graph and deletes agree on (PostgreSQL advisory lock).
_GRAPH_LOCK = 0x5A5D_0014


def as_ids(value: Any) -> list[uuid.UUID]:
    """The stored ``depends_on`` as ids; anything unreadable is skipped."""
    ids = []
    for item in value or ():
        try:
            ids.append(uuid.UUID(str(item)))
        except ValueError:
            continue
    return ids


class Graph:
    """Every daemon with its edges: ``needs`` (depends_on) and ``needed_by`` (the reverse)."""

    def __init__(self, rows: Iterable[Row]) -> None:
        self.rows = {row.id: row for row in rows}
        self._needs = {
            row.id: [dep for dep in dict.fromkeys(as_ids(row.depends_on)) if dep in self.rows]
            for row in self.rows.values()
        }
        self._needed_by: dict[uuid.UUID, list[uuid.UUID]] = {key: [] for key in self.rows}
        for daemon_id, deps in self._needs.items():
            for dep in deps:
                self._needed_by[dep].append(daemon_id)

    def needed(self) -> list[uuid.UUID]:
        """The daemons some daemon depends on."""
        return [daemon_id for daemon_id, needers in self._needed_by.items() if needers]

    def needs(self, daemon_id: uuid.UUID) -> list[Row]:
        return [self.rows[dep] for dep in self._needs.get(daemon_id, ())]

    def needed_by(self, daemon_id: uuid.UUID) -> list[Row]:
        return sorted((self.rows[d] for d in self._needed_by.get(daemon_id, ())), key=_name)

    def dependencies(self, daemon_id: uuid.UUID) -> list[Row]:
        """What it needs, transitively, in start order (a daemon after what it needs)."""
        return [self.rows[d] for d in _post_order([daemon_id], self._needs) if d != daemon_id]

    def dependents(self, daemon_id: uuid.UUID) -> list[Row]:
        """What needs it, transitively, in stop order (a daemon before what it needs)."""
        found = _post_order([daemon_id], self._needed_by)  # each after what needs it
        return [self.rows[d] for d in found if d != daemon_id]

    def start_order(self, daemon_ids: Iterable[uuid.UUID] | None = None) -> list[Row]:
        """These daemons (all by default) ordered so that each comes after what it needs."""
        wanted = set(self.rows if daemon_ids is None else daemon_ids)
        roots = sorted(wanted, key=lambda d: self.rows[d].name)
        return [self.rows[d] for d in _post_order(roots, self._needs) if d in wanted]

    def depth(self) -> dict[uuid.UUID, int]:
        """0 for a daemon that needs nothing, else one more than the deepest it needs."""
        depth: dict[uuid.UUID, int] = {}
        for row in self.start_order():
            depth[row.id] = 1 + max((depth.get(d, 0) for d in self._needs[row.id]), default=-1)
        return depth

    def stop_waves(self, rows: Iterable[Row]) -> list[list[Row]]:
        """``rows`` in waves to stop one after the other: a daemon in an earlier wave than any
        daemon it needs (those that nothing needs first)."""
        height: dict[uuid.UUID, int] = {}
        for row in reversed(self.start_order()):
            height[row.id] = 1 + max(
                (height.get(d, 0) for d in self._needed_by[row.id]), default=-1
            )
        waves: dict[int, list[Row]] = {}
        for row in rows:
            waves.setdefault(height.get(row.id, 0), []).append(row)
        return [sorted(waves[level], key=_name) for level in sorted(waves)]

    def cycle_with(self, daemon_id: uuid.UUID, proposed: Sequence[uuid.UUID]) -> list[str]:
        """The names along a cycle that ``proposed`` as the daemon's depends_on would close
        (first and last the daemon itself); empty when there is none."""
        needs = {**self._needs, daemon_id: list(proposed)}
        path = _path(daemon_id, needs, daemon_id, set())
        return [self.rows[d].name for d in path] if path else []


def _name(row: Row) -> str:
    return row.name


def _post_order(roots: Iterable[uuid.UUID], edges: dict) -> list[uuid.UUID]:
    """Depth-first post-order over ``edges`` from ``roots``: each after what it points to.
    A stored cycle (never written through the service) is cut where it closes."""
    order: list[uuid.UUID] = []
    done: set[uuid.UUID] = set()
    for root in roots:
        if root in done:
            continue
        stack, visiting = [(root, iter(edges.get(root, ())))], {root}
        while stack:
            node, children = stack[-1]
            child = next((c for c in children if c not in done and c not in visiting), None)
            if child is None:
                stack.pop()
                visiting.discard(node)
                done.add(node)
                order.append(node)
            else:
                visiting.add(child)
                stack.append((child, iter(edges.get(child, ()))))
    return order


def _path(start: uuid.UUID, needs: dict, goal: uuid.UUID, seen: set) -> list[uuid.UUID]:
    """A path start → … → goal through ``needs`` (at least one edge), or empty."""
    for dep in needs.get(start, ()):
        if dep == goal:
            return [start, goal]
        if dep not in seen:
            seen.add(dep)
            if rest := _path(dep, needs, goal, seen):
                return [start, *rest]
    return []


def load_graph(conn: Connection | None = None) -> Graph:
    query = select(daemons).order_by(daemons.c.name)
    if conn is not None:
        return Graph(conn.execute(query))
    with db.engine.connect() as own:
        return Graph(own.execute(query))


def lock_graph(conn: Connection) -> None:
    """Serialise edits of the graph (and deletes) until ``conn`` commits, so two concurrent
    edits cannot close a cycle that neither sees. SQLite has one writer at a time anyway."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_GRAPH_LOCK})")


# -- checking an edit ---------------------------------------------------------------------------


def checked_depends_on(value: Any, daemon_id: uuid.UUID | None, graph: Graph) -> list[str]:
    """``value`` as the ids to store, in the order given, once each; ``Invalid`` (key
    ``depends_on``) for a daemon that does not exist, the daemon itself, or a cycle (named).
    Names are taken for ids. ``daemon_id`` is None for a daemon not created yet."""
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise Invalid(f"{KEY} must be a list of daemon ids", key=KEY)
    if len(value) > MAX_DEPENDENCIES:
        raise Invalid(f"{KEY}: at most {MAX_DEPENDENCIES} daemons", key=KEY)
    by_name = {row.name: row.id for row in graph.rows.values()}
    ids = list(dict.fromkeys(_resolve(item, graph, by_name) for item in value))
    if daemon_id is not None and daemon_id in ids:
        raise Invalid(f"{KEY}: daemon {graph.rows[daemon_id].name!r} cannot depend on itself",
                      key=KEY, cycle=[graph.rows[daemon_id].name] * 2)  # fmt: skip
    if daemon_id is not None and (cycle := graph.cycle_with(daemon_id, ids)):
        raise Invalid(f"{KEY}: that would make a cycle: {' → '.join(cycle)}", key=KEY,
                      cycle=cycle)  # fmt: skip
    return [str(dep) for dep in ids]


def _resolve(item: str, graph: Graph, by_name: dict[str, uuid.UUID]) -> uuid.UUID:
    try:
        daemon_id = uuid.UUID(item.strip())
    except ValueError:
        daemon_id = by_name.get(item.strip())
    if daemon_id is None or daemon_id not in graph.rows:
        raise Invalid(f"{KEY}: no daemon {item!r}", key=KEY)
    return daemon_id


def refuse_delete_if_needed(conn: Connection, row: Row) -> None:
    """409 naming the daemons whose depends_on lists ``row`` (under ``lock_graph``)."""
    needed_by = load_graph(conn).needed_by(row.id)
    if needed_by:
        names = [other.name for other in needed_by]
        raise Conflict(
            f"daemon {row.name!r} is needed by {', '.join(names)}: remove it from their "
            f"{KEY} first, then delete it",
            needed_by=names,
        )


# -- readiness ----------------------------------------------------------------------------------


def is_ready(row: Row, holder: int | None, now: datetime, left: float | None = math.inf) -> bool:
    """RUNNING as wanted, its instance holding the lease, healthy, and heard from since its
    start: what a dependent waits for. ``left``, when known, is what its lease has left: one
    not renewed on time is not ready either (its worker may be gone with the dependent's,
    before the lease lapses or the heartbeat is overdue)."""
    beat, started = row.last_heartbeat, row.started_at
    return (
        row.status == DaemonStatus.RUNNING
        and row.desired_state == DesiredState.RUNNING
        and beat is not None
        and started is not None
        and beat > started
        and left is not None
        and left > _renewed_lately()
        and daemon_health(row, holder, now).state == HEALTHY
    )


def _renewed_lately() -> float:
    """The least a lease renewed on time has left (a live instance renews it every
    ``renewal_interval``)."""
    ttl = current_app.config["LEASE_TTL"]
    return ttl - renewal_interval(ttl) - RENEWAL_SLACK


def waiting_in(
    graph: Graph, holders: dict[str, int | None], row: Row, now: datetime, left: dict
) -> list:
    """The names of what ``row`` needs that is not ready (``left``: lease_remaining)."""
    return [
        dep.name
        for dep in graph.needs(row.id)
        if not is_ready(dep, holders.get(str(dep.id)), now, left.get(str(dep.id)))
    ]


def should_wait(row: Row, lease: int | None) -> bool:
    """Whether ``row`` is one that could be waiting: it should run, and no instance of it
    is starting or running."""
    if not row.depends_on or row.desired_state != DesiredState.RUNNING:
        return False
    if row.status == DaemonStatus.STARTING:
        return False
    return not (row.status in LIVE_STATES and lease == row.generation)


def unready(row: Row, now: datetime | None = None) -> list[str]:
    """The names of what ``row`` needs that is not ready, read now."""
    ids = as_ids(row.depends_on)
    if not ids:
        return []
    with db.engine.connect() as conn:
        deps = list(conn.execute(select(daemons).where(daemons.c.id.in_(ids))))
    holders, left = lease_holders([d.id for d in deps]), lease_remaining([d.id for d in deps])
    now = now or datetime.now(UTC)
    return sorted(
        dep.name for dep in deps if not is_ready(dep, holders[str(dep.id)], now, left[str(dep.id)])
    )


def waiting_for(row: Row, lease: int | None, now: datetime | None = None) -> list[str]:
    """What ``row`` waits for (names): empty unless it should run and does not."""
    if not should_wait(row, lease):
        return []
    try:
        return unready(row, now)
    except RedisError:
        # Shown with the daemon (and in the events a state change publishes after its write):
        # without Redis, leases are unknown; the supervisor's pass decides, not this.
        return []


def dependents_to_stop(daemon_id: uuid.UUID) -> list[list[Row]]:
    """What needs the daemon (transitively) and is up or should be, in stop waves."""
    with db.engine.connect() as conn:  # one column first: most daemons are needed by none
        needs = conn.execute(select(daemons.c.depends_on)).scalars()
        if not any(str(daemon_id) in (listed or ()) for listed in needs):
            return []
    graph = load_graph()
    up = [
        row
        for row in graph.dependents(daemon_id)
        if row.desired_state == DesiredState.RUNNING or row.status in LIVE_STATES
    ]
    return graph.stop_waves(up)


def waiting_line(names: Sequence[str]) -> str:
    """The status line of a daemon held for its dependencies."""
    return f"waiting for {', '.join(names)}"


# -- the view -----------------------------------------------------------------------------------


def describe_graph() -> dict[str, Any]:
    """Every daemon in start order with its depth, what it needs and what needs it."""
    graph = load_graph()
    depth = graph.depth()
    ref = _ref
    return {
        "daemons": [
            {
                **ref(row),
                "status": row.status,
                "depth": depth[row.id],
                "needs": [ref(dep) for dep in graph.needs(row.id)],
                "needed_by": [ref(dep) for dep in graph.needed_by(row.id)],
            }
            for row in graph.start_order()
        ],
        "edges": sum(len(graph.needs(row_id)) for row_id in graph.rows),
    }


def _ref(row: Row) -> dict[str, str]:
    return {"id": str(row.id), "name": row.name}
