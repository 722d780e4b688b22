"""The observability API: runs and metrics of a daemon, log search across daemons, alerts,
their rules and notification channels. Routes parse, call the service, shape."""

from __future__ import annotations

import uuid

from stashhog.api.openapi import TAGS, route
from stashhog.api.responses import LogList
from stashhog.models import LogLevel
from stashhog.observability import alerts, metrics, notify, rules, runs, search
from stashhog.observability.schemas import (
    AlertList,
    AlertsQuery,
    AllLogsQuery,
    ChannelIn,
    ChannelList,
    ChannelOut,
    DeliveryList,
    MetricSeries,
    MetricsQuery,
    RuleList,
    RulesUpdate,
    RunList,
    RunsQuery,
)
from stashhog.services.daemon_queries import find_daemon_row

TAGS.extend([
    {"name": "logs", "description": "Log search across daemons."},
    {"name": "alerts", "description": "Alerts, their rules and notification channels."},
])  # fmt: skip


@route("GET /daemons/<uuid:daemon_id>/runs", RunList, query=RunsQuery)
def daemon_runs(daemon_id: uuid.UUID, query: RunsQuery):
    """The daemon's runs (one per instance), newest first: when and where each ran, how it
    ended (stopped, returned, crashed with its error, fenced, worker_lost, restarted, killed),
    lines logged and dropped, and peak memory."""
    return {"runs": runs.list_runs(find_daemon_row(daemon_id).id, query.limit)}


@route("GET /daemons/<uuid:daemon_id>/metrics", MetricSeries, query=MetricsQuery)
def daemon_metrics(daemon_id: uuid.UUID, query: MetricsQuery):
    """CPU, RSS, threads and open files of the daemon's process: 15m every sample, 6h in
    one-minute buckets, 7d in ten-minute buckets (from the minute rollups)."""
    return metrics.series(find_daemon_row(daemon_id).id, query.range)


@route("GET /logs", LogList, query=AllLogsQuery)
def all_logs(query: AllLogsQuery):
    """Log lines of every daemon, newest first, optionally searched (``q``) and filtered."""
    levels = LogLevel.at_least(query.level) if query.level else None
    found = search.search_logs(
        query.q, levels=levels, since=query.since, daemon_id=query.daemon_id,
        generation=query.generation, before_id=query.before_id, limit=query.limit,
    )  # fmt: skip
    return {"logs": found}


@route("GET /alerts", AlertList, query=AlertsQuery)
def list_alerts(query: AlertsQuery):
    """Alerts, newest first, with the number firing now."""
    return alerts.list_alerts(query.status, query.daemon_id, query.limit)


@route("GET /alerts/rules", RuleList)
def list_rules():
    """Every alert rule with its setting (on or off, threshold, window)."""
    return {"rules": [rules.rule_to_dict(r) for r in rules.current_rules().values()]}


@route("PUT /alerts/rules", RuleList, body=RulesUpdate, errors=(422,))
def update_rules(body: RulesUpdate):
    """Change rules: each names a rule and the fields to change; the others stay."""
    changed = rules.update_rules([r.model_dump() for r in body.rules])
    return {"rules": [rules.rule_to_dict(r) for r in changed.values()]}


@route("GET /alerts/channels", ChannelList)
def list_channels():
    """Where notifications go."""
    return {"channels": notify.list_channels()}


@route("POST /alerts/channels", ChannelOut, status=201, body=ChannelIn, errors=(422,))
def add_channel(body: ChannelIn):
    """Add a channel: ``{"type": "webhook", "url": ...}`` (a JSON POST per notification) or
    ``{"type": "apprise", "url": ...}`` (any apprise URL: mailto://, slack://, ntfy://…)."""
    return notify.add_channel(body.type, body.url)


@route("DELETE /alerts/channels/<uuid:channel_id>", ChannelOut, errors=(404,))
def remove_channel(channel_id: uuid.UUID):
    """Remove a channel (and its delivery log)."""
    return notify.remove_channel(channel_id)


@route("GET /alerts/channels/<uuid:channel_id>/deliveries", DeliveryList, errors=(404,))
def channel_deliveries(channel_id: uuid.UUID):
    """The channel's delivery log, newest first: each attempt, its status code or error."""
    return {"deliveries": notify.list_deliveries(channel_id)}
