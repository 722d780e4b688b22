"""Ticker daemons (``TEST_TICKER``, tests/support/daemons.py) for the suites that fail things
over: made, started, and read back fresh from the database."""

from __future__ import annotations

from stashhog.extensions import db
from stashhog.models import Daemon
from stashhog.services.daemon_control import start_daemon

# A line every 50 ms and a heartbeat every 0.5 s: a gap or an overlap shows at once.
TICKER = {"interval": 0.05, "heartbeat_interval": 0.5}


def fresh(daemon_id) -> Daemon:
    """The row as the database has it now (never the session's cached copy)."""
    db.session.expire_all()
    return db.session.get(Daemon, daemon_id)


def make_ticker(name: str, **fields) -> Daemon:
    daemon = Daemon(name=name, type="TEST_TICKER", configuration=TICKER, **fields)
    db.session.add(daemon)
    db.session.commit()
    return daemon


def start_tickers(count: int, wait: float) -> list:
    """``count`` tickers (``ticker-0`` …), each RUNNING before this returns; their ids."""
    made = [make_ticker(f"ticker-{number}").id for number in range(count)]
    for daemon_id in made:
        assert start_daemon(daemon_id, wait=wait)["daemon"]["status"] == "RUNNING"
    return made
