"""``GET /api/daemons`` at 1,000 daemons: the list as JSON text, built from per-row pieces.

Measured at 1,000 daemons (bench/api_scale.py): ~55 ms a request, mostly the per-row work
of ``present`` (``daemon_to_dict``: field copies, ISO dates, the settings ETag's hash, the
configuration shown) and encoding 900 kB of JSON. A heartbeat changes one row, so rows are
read in two steps — every row's id and version (cheap: PostgreSQL's ``xmin``, new with every
write, whoever made it; elsewhere its ``updated_at`` and state columns), then the
full rows of those that changed since this process last encoded them — and each row's stored
part is kept encoded (``stored_fields``: the same until the row changes).
Only the part the lease and the clock decide (``live_fields``) is computed per request.
The cache holds one entry per daemon and drops rows that are gone.

That still cost ~22 ms a request in the web process, more than one core's share at 50
requests/s. So while the list is asked for more than BUSY_RATE times a second, a page once
built answers the requests of the next RECENT_MAX_AGE seconds (one build at a time; those
arriving meanwhile wait for it; a daemon added or deleted meanwhile, which a count tells,
makes a new one): pollers then see fields at most that old, and a client
asking now and then always gets a fresh one. A request with ``Cache-Control: no-cache`` (the
daemons page's own load, which must not predate its live subscription) and any write through
this process's API get a fresh one too.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
import zlib
from collections import deque
from datetime import UTC, datetime
from typing import Any, NamedTuple

from flask import current_app
from sqlalchemy import String, func, literal_column, select

from stashhog.extensions import db
from stashhog.models import Daemon
from stashhog.services.daemon_health import heartbeat_deadline, live_fields, stored_fields
from stashhog.services.lease import lease_holders

daemons = Daemon.__table__
# Seconds a built page answers requests, while more than BUSY_RATE a second arrive.
RECENT_MAX_AGE = 0.25
BUSY_RATE = 8


class Piece(NamedTuple):
    version: tuple  # the row's version (see ``_versions``) this was encoded from
    row: Any
    stored: str  # the JSON object of stored_fields(row), without its closing brace
    deadline: datetime | None  # heartbeat_deadline(row)


class Page(NamedTuple):
    body: str  # {"daemons": [...], "total": N, "limit": L, "offset": O}
    etag: str  # the body's CRC and length (weak: the same JSON, not the same bytes)
    total: int  # daemons at the time


class DaemonListing:
    """One process's encoded rows (see the module docstring); safe across threads."""

    def __init__(self) -> None:
        self.pieces: dict[Any, Piece] = {}
        self.lock = threading.Lock()
        self.building = threading.Lock()
        self.recent: dict[tuple, tuple[float, Page]] = {}
        self.asked: deque[float] = deque(maxlen=BUSY_RATE)  # when the last requests came

    def page(self, limit: int | None = None, offset: int = 0, *, fresh: bool = True) -> Page:
        """Daemons by name, ``offset`` on, at most ``limit`` (all when None); unless
        ``fresh``, a page built within RECENT_MAX_AGE will do while the list is busy."""
        now = time.monotonic()
        busy = len(self.asked) == BUSY_RATE and now - self.asked[0] < 1.0
        self.asked.append(now)
        if fresh or not busy:
            return self._remember((limit, offset), self._build(limit, offset))
        with self.building:
            built = self.recent.get((limit, offset))
            if built is not None and time.monotonic() - built[0] < RECENT_MAX_AGE:
                if built[1].total == _count():  # a daemon added or deleted: build anew
                    return built[1]
            return self._remember((limit, offset), self._build(limit, offset))

    def forget_recent(self) -> None:
        """After a write: the next request builds its page afresh."""
        self.recent = {}

    def _remember(self, key: tuple, page: Page) -> Page:
        recent = {k: v for k, v in self.recent.items() if time.monotonic() - v[0] < RECENT_MAX_AGE}
        recent[key] = (time.monotonic(), page)
        self.recent = recent
        return page

    def _build(self, limit: int | None, offset: int) -> Page:
        versions = _versions().order_by(daemons.c.name).offset(offset)
        if limit is not None:
            versions = versions.limit(limit)
        with db.engine.connect() as conn:
            listed = _keyed(conn.execute(versions).all())
            total = len(listed) + offset
            if limit is not None or offset:
                total = _count(conn)
            stale = [uuid.UUID(key) for key, version in listed if self._stale(key, version)]
            query = select(daemons, *_versions().selected_columns[1:]).where(
                daemons.c.id.in_(stale)
            )
            fresh = conn.execute(query).all() if stale else []
        self._encode(fresh)
        if limit is None and not offset:
            self._forget_all_but({key for key, _version in listed})
        keys = [key for key, _version in listed if key in self.pieces]
        pieces = [self.pieces[key] for key in keys]
        holders = lease_holders(keys)
        leases = [holders[daemon_id] for daemon_id in keys]
        now = datetime.now(UTC)
        parts = [
            f"{piece.stored},{json.dumps(live_fields(piece.row, lease, now, piece.deadline))[1:]}"
            for piece, lease in zip(pieces, leases, strict=True)
        ]
        body = (f'{{"daemons":[{",".join(parts)}],"total":{total},'
                f'"limit":{json.dumps(limit)},"offset":{offset}}}')  # fmt: skip
        return Page(body, f"{zlib.crc32(body.encode()):08x}{len(body):x}", total)

    def _stale(self, key: str, version: tuple) -> bool:
        piece = self.pieces.get(key)
        return piece is None or piece.version != version

    def _encode(self, rows: list[Any]) -> None:
        width = len(_versions().selected_columns) - 1
        for row in rows:
            stored = json.dumps(stored_fields(row))[:-1]
            piece = Piece(tuple(row)[-width:], row, stored, heartbeat_deadline(row))
            with self.lock:
                self.pieces[str(row.id)] = piece

    def _forget_all_but(self, ids: set) -> None:
        with self.lock:
            for gone in set(self.pieces) - ids:
                del self.pieces[gone]


def _count(conn: Any = None) -> int:
    query = select(func.count()).select_from(daemons)
    if conn is not None:
        return conn.execute(query).scalar_one()
    with db.engine.connect() as own:
        return own.execute(query).scalar_one()


def _keyed(listed: list[Any]) -> list[tuple[str, tuple]]:
    """(id as ``str(uuid)``, version) of each row ``_versions`` read (SQLite stores a UUID
    as 32 hex digits: put the dashes back, as lease keys and the pieces have them)."""
    if db.engine.dialect.name == "postgresql":
        return [(entry[0], tuple(entry[1:])) for entry in listed]
    return [(str(uuid.UUID(entry[0])), tuple(entry[1:])) for entry in listed]


def _versions():
    """id, then what tells one version of a row from another (labelled: never merged with
    the row's own columns when selected beside them)."""
    # The id as text: converting 1,000 UUIDs per request was a tenth of its time.
    key = daemons.c.id.cast(String).label("key")
    if db.engine.dialect.name == "postgresql":
        return select(key, literal_column("daemons.xmin::text").label("v0"))
    columns = ("updated_at", "generation", "status", "desired_state", "last_heartbeat", "enabled")
    return select(key, *(daemons.c[name].label(f"v{i}") for i, name in enumerate(columns)))


def daemon_listing() -> DaemonListing:
    """The current app's listing (one per app and process)."""
    extensions = current_app.extensions
    listing = extensions.get("daemon_listing")
    if listing is None:
        listing = extensions.setdefault("daemon_listing", DaemonListing())
    return listing
