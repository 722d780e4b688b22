"""Many daemons at once, for ``bench.density`` and ``bench.failover``: start them through the
service, count them by status on a plain connection, and wait until they are all up (or
until nothing moves any more: the figures say how many made it, never hang)."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable

from bench.harness import BenchServices, machine_load, note, print_json
from stashhog.errors import StashHogError
from stashhog.services.daemon_control import start_daemon

STATUS_SQL = (
    "SELECT status, last_heartbeat IS NOT NULL, count(*) FROM daemons WHERE id = ANY(%s::uuid[]) "
    "GROUP BY 1, 2"
)
REASONS_SQL = (
    "SELECT status, coalesce(last_error, status_line, ''), count(*) FROM daemons "
    "WHERE id = ANY(%s::uuid[]) AND status <> 'RUNNING' GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 5"
)
# Waiting for the last daemons ends when no count has moved for this long.
STALL_SECONDS = 20.0


def start_all(bench: BenchServices, ids: list[uuid.UUID]) -> dict[str, int]:
    """``start_daemon`` for each, one after the other (as an operator's script would call the
    API); refusals counted by their message."""
    refused: Counter = Counter()
    with bench.app.app_context():
        for daemon_id in ids:
            try:
                start_daemon(daemon_id)
            except StashHogError as exc:
                refused[exc.message[:120]] += 1
    return dict(refused)


def counts(cursor, ids: list[str]) -> dict[str, int]:
    """``{status: n}``, RUNNING counting only rows with a heartbeat (else "RUNNING-no-beat")."""
    cursor.execute(STATUS_SQL, (ids,))
    found: Counter = Counter()
    for status, beat, count in cursor.fetchall():
        found[status if beat or status != "RUNNING" else "RUNNING-no-beat"] += count
    return dict(found)


def reasons(cursor, ids: list[str]) -> list[str]:
    """The commonest (status, reason) of the daemons not RUNNING: what an operator sees."""
    cursor.execute(REASONS_SQL, (ids,))
    return [f"{count} {status}: {reason}" for status, reason, count in cursor.fetchall()]


def wait_running(cursor, ids: list[str], timeout: float) -> tuple[float | None, dict[str, int]]:
    """Seconds until every one of ``ids`` is RUNNING with a heartbeat (None if that never
    happened within ``timeout`` or before STALL_SECONDS without change), and the last counts."""
    began = time.monotonic()
    last, moved = None, began
    while True:
        now_counts = counts(cursor, ids)
        now = time.monotonic()
        if now_counts.get("RUNNING", 0) == len(ids):
            return now - began, now_counts
        if now_counts != last:
            last, moved = now_counts, now
            note(f"{now - began:.1f} s: {now_counts}")
        if now - began > timeout or now - moved > STALL_SECONDS:
            note(f"gave up waiting after {now - began:.1f} s: {now_counts}")
            return None, now_counts
        time.sleep(0.2)


def run_bench(name: str, args, run: Callable, print_report: Callable[[dict], None]) -> None:
    """A fleet bench's main: ``run(bench, args)`` on fresh services, its table, its JSON."""
    note(machine_load())
    with BenchServices() as bench:
        figures = run(bench, args)
        print_report(figures)
        note(machine_load())
    if args.json:
        print_json(name, figures)
