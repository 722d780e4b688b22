"""Daemons that depend on each other, for the dependency tests."""

from __future__ import annotations

# A fast TEST_TICKER: its first heartbeat comes about 0.5 s after its claim, so a start that
# did not wait for it shows in the start times.
TICKER = {"interval": 0.2, "heartbeat_interval": 0.5}


def make_chain(make_daemon, prefix: str) -> tuple:
    """``<prefix>-a`` ← ``<prefix>-b`` ← ``<prefix>-c``: B depends on A, C on B."""
    made = []
    for letter in "abc":
        needs = [str(made[-1].id)] if made else []
        made.append(make_daemon(f"{prefix}-{letter}", type="TEST_TICKER", configuration=TICKER,
                                depends_on=needs))  # fmt: skip
    return tuple(made)
