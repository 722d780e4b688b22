"""The built-in alert rules, their defaults, and the operator's settings of them.

A rule is on or off with a threshold (its N) and, for rates, a window. Rules without a row in
``alert_rules`` use their defaults: the first two are on, so a fresh install alerts on crashes
as soon as a channel is added.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from stashhog.errors import Invalid
from stashhog.extensions import db
from stashhog.models import AlertRule

rules_table = AlertRule.__table__


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    enabled: bool = False
    threshold: float | None = None
    unit: str | None = None
    window: int | None = None


DEFAULTS = (
    Rule("daemon_error", "A daemon entered ERROR (run() raised, or it could not start).", True),
    Rule(
        "restart_budget_spent",
        "A daemon crashed more often than max_restarts allows and stays in ERROR.",
        True,
    ),  # fmt: skip
    Rule(
        "heartbeat_late",
        "A daemon that should run has had no heartbeat for more than N s.",
        threshold=60,
        unit="seconds",
    ),  # fmt: skip
    Rule(
        "error_lines",
        "A daemon logged more than N ERROR lines in the window.",
        threshold=10,
        unit="lines",
        window=60,
    ),  # fmt: skip
    Rule(
        "job_failure_rate",
        "More than N % of the jobs that ended in the window failed "
        "(at least 5 ended; notification jobs not counted).",
        threshold=50,
        unit="%",
        window=600,
    ),  # fmt: skip
    Rule(
        "memory_high", "A running daemon's process is over N MB RSS.", threshold=500, unit="MB"
    ),  # fmt: skip
)
BY_NAME = {rule.name: rule for rule in DEFAULTS}


def current_rules() -> dict[str, Rule]:
    """Every rule with the operator's settings over its defaults."""
    with db.engine.connect() as conn:
        rows = {row.name: row for row in conn.execute(select(rules_table))}
    return {rule.name: _apply(rule, rows.get(rule.name)) for rule in DEFAULTS}


def _apply(rule: Rule, row: Any) -> Rule:
    if row is None:
        return rule
    return replace(
        rule,
        enabled=row.enabled,
        threshold=row.threshold if row.threshold is not None else rule.threshold,
        window=row.window if row.window is not None else rule.window,
    )


def rule_to_dict(rule: Rule) -> dict[str, Any]:
    return {
        "name": rule.name, "description": rule.description, "enabled": rule.enabled,
        "threshold": rule.threshold, "threshold_unit": rule.unit, "window": rule.window,
    }  # fmt: skip


def update_rules(changes: list[dict[str, Any]]) -> dict[str, Rule]:
    """Apply partial changes (``name`` plus any of enabled, threshold, window), all or none."""
    rules = current_rules()
    for change in changes:
        name = change["name"]
        if name not in rules:
            raise Invalid(f"unknown rule {name!r} (known: {', '.join(BY_NAME)})", key="name")
        fields = {k: v for k, v in change.items() if k != "name" and v is not None}
        if "threshold" in fields and BY_NAME[name].threshold is None:
            raise Invalid(f"rule {name!r} takes no threshold", key="threshold")
        if "window" in fields and BY_NAME[name].window is None:
            raise Invalid(f"rule {name!r} takes no window", key="window")
        rules[name] = replace(rules[name], **fields)
    with db.engine.begin() as conn:
        for change in changes:
            _upsert(conn, rules[change["name"]])
    return rules


def _upsert(conn, rule: Rule) -> None:
    values = {"enabled": rule.enabled, "threshold": rule.threshold, "window": rule.window,
              "updated_at": datetime.now(UTC)}  # fmt: skip
    exists = conn.execute(select(rules_table.c.name).where(rules_table.c.name == rule.name))
    if exists.first() is None:
        conn.execute(rules_table.insert().values(name=rule.name, **values))
    else:
        conn.execute(rules_table.update().where(rules_table.c.name == rule.name).values(**values))
