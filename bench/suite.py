"""The side-by-side suite ``python -m bench`` runs: which script with which options (full and
``--quick``), the headline names each must report, and the issue's goal rows read from their
``--json`` figures, with the peers' figures and the ratios."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Bench:
    key: str  # its name in the summary and the raw JSON
    module: str
    full: tuple[str, ...]
    quick: tuple[str, ...]
    headline: tuple[str, ...]  # names its --json must have (the test checks them)
    timeout: float = 240.0  # seconds, full size
    quick_timeout: float = 150.0

    def arguments(self, quick: bool) -> list[str]:
        return list(self.quick if quick else self.full)


def modes(key: str, module: str, headline: tuple[str, ...]) -> list[Bench]:
    return [
        Bench(f"{key}_{mode}", module, ("--mode", mode), ("--quick", "--mode", mode), headline)
        for mode in ("prefork", "threads")
    ]


DENSITY = ("running", "uss_per_daemon_mb", "heartbeat_lateness_p99_ms", "overdue_daemons",
           "restarted_daemons", "api_p99_ms", "pg_connections_max", "bring_up_s")  # fmt: skip
FAILOVER = ("recovered", "not_recovered", "recovery_p50_s", "recovery_p99_s", "recovery_max_s")
BENCHES = [
    Bench("start_stop", "start_stop", (), ("--quick",),
          ("start_p99_ms", "stop_p99_ms", "supervisord_start_p99_ms", "supervisord_stop_p99_ms",
           "start_p99_ratio", "stop_p99_ratio")),
    Bench("log_throughput", "log_throughput", (), ("--quick",),
          ("persisted_per_s", "published_per_s", "copy_alone_per_s", "baseline_per_s"),
          timeout=300),
    Bench("log_latency", "log_latency", ("--clients", "20,100"), ("--quick", "--clients", "20,100"),
          ("p99_ms_20", "p99_ms_100", "steps")),
    Bench("memory", "memory", (), ("--quick",), ("per_daemon_uss_mb",)),
    Bench("viewers", "viewers", (), ("--quick",), ("api_p99_ms", "fanout_p99_ms")),
    *modes("density", "density", DENSITY),
    *modes("failover", "failover", FAILOVER),
    Bench("api_scale", "api_scale", (), ("--quick",), ("api_p99_ms", "page_render_ms")),
]  # fmt: skip


def _ms(value) -> str:
    return "-" if value is None else f"{value:,.1f} ms"


def _count(value) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _ratio(ours, theirs) -> str:
    return "-" if not ours or not theirs else f"{ours / theirs:.2f}×"


def _met(condition: bool | None) -> str:
    return "?" if condition is None else ("met" if condition else "not met")


def _at_most(value, goal: float) -> bool | None:
    return None if value is None else value <= goal


def start_stop_rows(f: dict) -> list[list[str]]:
    rows = []
    for what, label in (
        ("start", "start → RUNNING + heartbeat"),
        ("stop", "stop → STOPPED + last line"),
    ):
        ours, theirs = f.get(f"{what}_p99_ms"), f.get(f"supervisord_{what}_p99_ms")
        rows.append([f"{label}, p99", "≤ 25 ms", _ms(ours),
                     f"supervisord {_ms(theirs)}; ours/theirs {_ratio(ours, theirs)}",
                     _met(_at_most(ours, 25))])  # fmt: skip
    return rows


def throughput_rows(f: dict) -> list[list[str]]:
    persisted, copy = f.get("persisted_per_s"), f.get("copy_alone_per_s")
    published = f.get("published_per_s", persisted)
    baseline = f.get("baseline_per_s")
    if baseline is None:
        cases = [c for c in f.get("cases", []) if str(c.get("case", "")).startswith("baseline")]
        baseline = cases[0].get("persisted_per_s") if cases else None
    met = None
    if persisted is not None and copy:
        met = min(persisted, published or 0) >= max(100_000, 0.5 * copy)
    peers = (f"COPY alone {_count(copy)}/s (ours/COPY {_ratio(persisted, copy)}); per-line "
             f"pattern {_count(baseline)}/s (ours/it {_ratio(persisted, baseline)})")  # fmt: skip
    figure = f"{_count(persisted)}/s (published {_count(published)}/s)"
    return [["log lines persisted and published, one daemon", "≥ 100,000/s and ≥ 0.5 × COPY",
             figure, peers, _met(met)]]  # fmt: skip


def latency_rows(f: dict) -> list[list[str]]:
    """A row per step (20 and 100 clients): WebSocket p99 against the goal, the tab's DOM."""
    rows = []
    for step in f.get("steps", []):
        clients = step.get("clients")
        goal = LATENCY_GOALS_MS.get(clients)
        value = step.get("websocket_p99_ms")
        rows.append([f"log() → WebSocket, {_count(f.get('rate'))} lines/s, {clients} clients, "
                     "p99", "-" if goal is None else f"≤ {goal:g} ms", _ms(value),
                     f"Chromium DOM p99 {_ms(step.get('dom_p99_ms'))}",
                     _met(None if goal is None else _at_most(value, goal))])  # fmt: skip
    return rows


def density_rows(f: dict) -> list[list[str]]:
    goal = f.get("goal_daemons", 0)
    on_time = f.get("overdue_daemons") == 0 and f.get("restarted_daemons") == 0
    met = f.get("running", 0) >= goal and on_time and _at_most(f.get("api_p99_ms"), 100)
    figure = (f"{f.get('running')}/{f.get('daemons')} RUNNING, {f.get('overdue_daemons')} "
              f"overdue, {f.get('restarted_daemons')} restarted, API p99 "
              f"{_ms(f.get('api_p99_ms'))}")  # fmt: skip
    detail = (
        f"{f.get('redispatched_at_bring_up')} re-dispatched at bring-up, "
        f"{f.get('uss_per_daemon_mb')} MB USS/daemon, heartbeat lateness p99 "
        f"{_ms(f.get('heartbeat_lateness_p99_ms'))}, {f.get('pg_connections_max')} PG "
        f"connections (max {f.get('max_connections')}), up in {f.get('bring_up_s')} s"
    )
    return [[f"density, {f.get('mode')}: daemons on one worker, heartbeats on time, API p99",
             f"≥ {goal:,}, 0 overdue or restarted, ≤ 100 ms", figure, detail,
             _met(met)]]  # fmt: skip


def failover_rows(f: dict) -> list[list[str]]:
    p99 = f.get("recovery_p99_s")
    met = f.get("not_recovered") == 0 and f.get("recovered") == f.get("daemons")
    met = met and _at_most(p99, 10)
    figure = f"{f.get('recovered')}/{f.get('daemons')} back, p99 {p99} s"
    detail = f"p50 {f.get('recovery_p50_s')} s, max {f.get('recovery_max_s')} s"
    return [[f"failover, {f.get('mode')}: kill -9 of a worker holding {f.get('daemons')}",
             "all RUNNING again, p99 ≤ 10 s", figure, detail, _met(met)]]  # fmt: skip


def api_scale_rows(f: dict) -> list[list[str]]:
    api, render = f.get("api_p99_ms"), f.get("page_render_ms")
    gap = f.get("page_max_frame_gap_ms")
    return [
        [f"GET /api/daemons, {f.get('daemons')} daemons, {f.get('rate')} req/s, p99", "≤ 50 ms",
         _ms(api), f"supervisor pass p50 {_ms(f.get('supervisor_pass_ms'))}",
         _met(_at_most(api, 50))],
        [f"daemons page, {f.get('daemons')} cards: render", "≤ 1 s", _ms(render),
         f"max frame gap {_ms(gap)} while live", _met(_at_most(render, 1000))],
    ]  # fmt: skip


def report_rows(label: str, names: tuple[str, ...]) -> Callable[[dict], list[list[str]]]:
    def rows(f: dict) -> list[list[str]]:
        return [[label, "(report)", ", ".join(f"{n} {f.get(n)}" for n in names), "", ""]]

    return rows


ROWS: dict[str, Callable[[dict], list[list[str]]]] = {
    "start_stop": start_stop_rows,
    "log_throughput": throughput_rows,
    "log_latency": latency_rows,
    "memory": report_rows("memory per running daemon, prefork (MB USS)", ("per_daemon_uss_mb",
                                                                           "idle_slot_uss_mb")),
    "viewers": report_rows("web process with many WebSockets", ("max_websockets", "api_p99_ms",
                                                                "fanout_p99_ms")),
    "density_prefork": density_rows,
    "density_threads": density_rows,
    "failover_prefork": failover_rows,
    "failover_threads": failover_rows,
    "api_scale": api_scale_rows,
}  # fmt: skip
LATENCY_GOALS_MS = {20: 50.0, 100: 100.0}
HEADERS = ["measure", "goal", "figure", "peers, ratios, details", "status"]
