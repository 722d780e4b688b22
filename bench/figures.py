"""The numbers every benchmark prints: percentiles and latency summaries, plain-text tables,
the ``--json`` line, CPU seconds and the load average, progress notes on stderr."""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import psutil


def cpu_seconds(pids) -> dict[int, float]:
    """User + system CPU seconds of each live process in ``pids``."""
    seconds = {}
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.NoSuchProcess:
            continue
        seconds[pid] = times.user + times.system
    return seconds


def backend_pids(conn) -> list[int]:
    """The PostgreSQL server processes serving this database (other than ``conn``'s own)."""
    with conn.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        )
        return [pid for (pid,) in cursor.fetchall()]


def machine_load() -> str:
    """Load average and CPU count: other work on the machine inflates every latency."""
    one, five, _fifteen = os.getloadavg()
    return f"load average {one:.1f} (1 min) {five:.1f} (5 min) on {os.cpu_count()} CPUs"


def note(message: str) -> None:
    print(f"# {message}", file=sys.stderr, flush=True)


def poll(probe: Callable[[], Any], timeout: float, interval: float = 0.001) -> Any:
    """Call ``probe`` every ``interval`` until it returns something truthy (or None at the
    deadline)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p99 of 200 samples is the 2nd largest)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def summary_row(label: str, values_ms: Sequence[float]) -> list[str]:
    return [
        label,
        str(len(values_ms)),
        *(f"{percentile(values_ms, p):.1f}" if values_ms else "-" for p in (50, 90, 99)),
        f"{max(values_ms):.1f}" if values_ms else "-",
    ]


SUMMARY_HEADERS = ["measure", "n", "p50 ms", "p90 ms", "p99 ms", "max ms"]


def summary_figures(values_ms: Sequence[float]) -> dict[str, float | int | None]:
    """``summary_row``'s figures for ``--json``: n, p50/p90/p99/max in ms (None if empty)."""
    figures: dict[str, float | int | None] = {"n": len(values_ms)}
    for p in (50, 90, 99):
        figures[f"p{p}_ms"] = round(percentile(values_ms, p), 2) if values_ms else None
    figures["max_ms"] = round(max(values_ms), 2) if values_ms else None
    return figures


def add_json_option(parser) -> None:
    parser.add_argument(
        "--json", action="store_true", help="end with one line: a JSON object of the figures"
    )


def print_json(bench: str, figures: dict[str, Any]) -> None:
    """The last line of stdout under ``--json``: one object, named by ``bench``, with the load
    average the figures were measured under (names listed in bench/README.md)."""
    load = [round(value, 2) for value in os.getloadavg()]
    print(json.dumps({"bench": bench, "load_average": load, **figures}), flush=True)


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain-text table: first column left-aligned, the others right-aligned."""
    cells = [list(map(str, headers)), *([str(cell) for cell in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        first = row[0].ljust(widths[0])
        rest = (cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True))
        return "  ".join([first, *rest]).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(cells[0]), rule, *(line(row) for row in cells[1:])])
