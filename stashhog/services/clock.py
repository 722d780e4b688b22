"""One clock for times that are written on one host and compared on another: the
database's. Hosts' wall clocks differ (NTP keeps them close, not equal); a supervisor that
compares its own ``now`` with an ``updated_at`` another host wrote would act early or late
by the difference. Ownership never depends on a clock (the lease is a Redis TTL, fencing is
the generation), but these timing decisions do: cluster start, dispatch timeout, stop
escalation, a fresh STARTING row. On SQLite (the embedded default: one host) the process
clock is the database's."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from stashhog.extensions import db


def write_now(conn: Connection):
    """The value to store as "now": the database's time on PostgreSQL."""
    if conn.dialect.name == "postgresql":
        return func.clock_timestamp()
    return datetime.now(UTC)


def read_now(conn: Connection | None = None) -> datetime:
    """The database's time now (an aware UTC datetime)."""
    if (conn.dialect.name if conn is not None else db.engine.dialect.name) != "postgresql":
        return datetime.now(UTC)
    if conn is not None:
        return conn.execute(select(func.clock_timestamp())).scalar().astimezone(UTC)
    with db.engine.connect() as own:
        return own.execute(select(func.clock_timestamp())).scalar().astimezone(UTC)
