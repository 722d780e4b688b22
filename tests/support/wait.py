"""Polling for asynchronous outcomes, with a deadline instead of fixed sleeps."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(probe: Callable[[], T], timeout: float = 5.0, interval: float = 0.02) -> T:
    """Call ``probe`` until it returns something truthy; fail with its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value or time.monotonic() >= deadline:
            assert value, f"condition not met within {timeout}s (last value: {value!r})"
            return value
        time.sleep(interval)
