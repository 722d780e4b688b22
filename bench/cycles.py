"""What a start/stop cycle measures, on either side (``bench.start_stop``: a daemon through
StashHog; ``bench.supervisord``: a program under supervisord): the samples of a run, their
``--json`` figures and their table."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from bench.harness import SUMMARY_HEADERS, summary_figures, summary_row, table

# Samples field -> the measure's label in the tables (the field is its name in --json).
MEASURES = {
    "start_call": "start: call returned",
    "start_stamp": "start: started_at stamp - call",
    "start_visible": "start: RUNNING+heartbeat visible",
    "subscribed": "start: control channel subscribed",
    "stop_call": "stop: call returned",
    "on_stop_stamp": "stop: on_stop line's created_at - call",
    "stop_stamp": "stop: stopped_at stamp - call",
    "stop_visible": "stop: STOPPED+on_stop visible",
}


@dataclass
class Samples:
    start_call: list[float] = field(default_factory=list)
    start_visible: list[float] = field(default_factory=list)
    start_stamp: list[float] = field(default_factory=list)
    subscribed: list[float] = field(default_factory=list)
    stop_call: list[float] = field(default_factory=list)
    stop_visible: list[float] = field(default_factory=list)
    on_stop_stamp: list[float] = field(default_factory=list)
    stop_stamp: list[float] = field(default_factory=list)
    polls: int = 0
    poll_time: float = 0.0
    pids: Counter = field(default_factory=Counter)
    reasons: Counter = field(default_factory=Counter)  # the instance's "stopped (...)" line
    hung: int = 0
    anomalies: list[str] = field(default_factory=list)

    def mean_poll_ms(self) -> float:
        return self.poll_time / self.polls * 1000 if self.polls else 0.0

    def figures(self, cycles: int, names=MEASURES) -> dict:
        """This run's figures for ``--json`` (a latency summary for each of ``names``)."""
        return {
            "cycles": cycles,
            "hung": self.hung,
            "anomalies": self.anomalies,
            "row_poll_ms": round(self.mean_poll_ms(), 3),
            **{name: summary_figures(getattr(self, name)) for name in names},
        }


def report(title: str, samples: Samples, cycles: int, labels: dict | None = None) -> None:
    """The run's table (``labels``: measure -> label, those measured; MEASURES by default)."""
    labels = labels or MEASURES
    rows = [summary_row(label, getattr(samples, name)) for name, label in labels.items()]
    print(f"\n{title}")
    print(table(SUMMARY_HEADERS, rows))
    print(f"observer: one read every {samples.mean_poll_ms():.2f} ms on average")
    if samples.pids:
        print(f"pool children used (pid: cycles): {dict(samples.pids)}")
    if samples.reasons:
        print(f"what stopped the instance (its last line: cycles): {dict(samples.reasons)}")
    print(f"stops hung: {samples.hung} of {cycles}")
    for anomaly in samples.anomalies:
        print(f"ANOMALY {anomaly}")
