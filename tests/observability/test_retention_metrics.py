"""Retention caps, log search, /metrics and the rules API on the real services."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, insert, select

from stashhog.extensions import db
from stashhog.models import DaemonLog
from stashhog.observability import retention

logs = DaemonLog.__table__


def add_lines(daemon_id, count: int, *, days_old: float = 0, text: str = "line") -> None:
    at = datetime.now(UTC) - timedelta(days=days_old)
    rows = [{"daemon_id": daemon_id, "level": "INFO", "message": f"{text} {i}",
             "created_at": at} for i in range(count)]  # fmt: skip
    with db.engine.begin() as conn:
        conn.execute(insert(logs), rows)


def line_count(daemon_id) -> int:
    with db.engine.connect() as conn:
        return conn.execute(select(func.count()).where(logs.c.daemon_id == daemon_id)).scalar()


def test_logs_stop_growing_at_the_daemon_cap_and_the_age_cap(app, make_daemon):
    capped = make_daemon(log_max_lines=500)
    aged = make_daemon(log_max_age_days=2)
    add_lines(capped.id, 1200)
    add_lines(aged.id, 300, days_old=3)
    add_lines(aged.id, 200, days_old=1, text="recent")
    app.config["PRUNE_BATCH"] = 100  # many small transactions, as in production
    try:
        counts = retention.prune()
    finally:
        app.config["PRUNE_BATCH"] = 5000
    # The kept lines, plus the supervisor's note of what it pruned.
    assert line_count(capped.id) == 500 + 1 and line_count(aged.id) == 200 + 1
    assert counts["daemon_logs"] == 700 + 300  # 1200 - 500, and the 300 old ones
    with db.engine.connect() as conn:
        oldest = conn.execute(select(func.min(logs.c.message)).where(logs.c.daemon_id == aged.id))
        assert oldest.scalar().startswith("recent")
    messages = [line["message"] for line in retention_lines(capped.id)]
    assert any("retention pruned 700 log lines" in m for m in messages)


def retention_lines(daemon_id):
    from stashhog.services.daemon_queries import get_logs

    return get_logs(daemon_id, q="retention pruned")


def test_search_finds_words_and_phrases_with_filters(client, make_daemon):
    daemon = make_daemon()
    add_lines(daemon.id, 50, text="ordinary chatter")
    add_lines(daemon.id, 3, text="disk quota exceeded on volume")
    found = client.get(f"/api/daemons/{daemon.id}/logs?q=quota").json["logs"]
    assert len(found) == 3 and all("quota" in line["message"] for line in found)
    phrase = client.get(f'/api/daemons/{daemon.id}/logs?q="quota exceeded"').json["logs"]
    assert len(phrase) == 3
    assert client.get(f'/api/daemons/{daemon.id}/logs?q="exceeded quota"').json["logs"] == []
    across = client.get("/api/logs?q=quota -volume").json["logs"]
    assert across == []
    across = client.get(f"/api/logs?q=chatter&daemon_id={daemon.id}&limit=10").json["logs"]
    assert len(across) == 10


def test_prometheus_metrics_read_the_database_and_redis(client, anonymous, make_daemon):
    daemon = make_daemon(name="prom-daemon")
    body = client.get("/metrics").get_data(as_text=True)
    assert f'stashhog_daemon_up{{daemon="prom-daemon",daemon_id="{daemon.id}"}} 0.0' in body
    assert 'stashhog_daemon_status{daemon="prom-daemon"' in body
    assert 'stashhog_queue_length{queue="jobs"}' in body
    refused = anonymous.get("/metrics")
    assert refused.status_code == 401, refused.status_code  # a scrape fails, not a redirect
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")


def test_rules_can_be_read_and_changed(client, clean_alerts):
    rules = {r["name"]: r for r in client.get("/api/alerts/rules").json["rules"]}
    assert rules["daemon_error"]["enabled"] and rules["restart_budget_spent"]["enabled"]
    assert not rules["memory_high"]["enabled"] and rules["memory_high"]["threshold"] == 500
    body = {"rules": [{"name": "memory_high", "enabled": True, "threshold": 64}]}
    changed = {r["name"]: r for r in client.put("/api/alerts/rules", json=body).json["rules"]}
    assert changed["memory_high"]["enabled"] and changed["memory_high"]["threshold"] == 64
    bad = client.put("/api/alerts/rules", json={"rules": [{"name": "nope"}]})
    assert bad.status_code == 422


def test_flask_daemons_prune_runs_a_pass(worker_env):
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", "daemons", "prune", "--json"],
        env=worker_env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert '"ran": true' in result.stdout


TRICKY = ["Disk:FULL on /data", "foo-bar started", "can't connect", "Größe 12 MB",
          "ratio 1.5 ok", "snake_case name", "plain words here", "QUOTA exceeded; retrying",
          "quota, exceeded"]  # fmt: skip


@pytest.mark.parametrize("window", [50_000, 2])
def test_the_substring_prefilter_never_hides_a_full_text_match(app, make_daemon, monkeypatch,
                                                               window):  # fmt: skip
    """On PostgreSQL the search adds substring prefilters before the full-text match and
    tests the newest ids first (speed-ups): for every query, the lines found are exactly
    those the full-text match alone finds, newest first, whether the newest window holds
    them all or only some (window 2: the rest come from the second pass)."""
    from stashhog.observability import search

    if db.engine.dialect.name != "postgresql":
        pytest.skip("the prefilter is PostgreSQL's only")
    daemon = make_daemon()
    with db.engine.begin() as conn:
        conn.execute(insert(logs), [{"daemon_id": daemon.id, "level": "INFO", "message": m,
                                     "created_at": datetime.now(UTC)} for m in TRICKY])  # fmt: skip
    document = func.to_tsvector(search.CONFIG, logs.c.message)
    for q in ["disk:full", "DISK full", "foo-bar", "bar", "can't", "größe", "1.5", "snake_case",
              '"quota exceeded"', "quota -retrying", "quota or words", "exceeded"]:  # fmt: skip
        alone = document.op("@@")(func.websearch_to_tsquery(search.CONFIG, q))
        with db.engine.connect() as conn:
            expected = set(conn.scalars(select(logs.c.message).where(
                logs.c.daemon_id == daemon.id, alone)))  # fmt: skip
        monkeypatch.setattr(search, "NEWEST_WINDOW", window)
        lines = search.search_logs(q, daemon_id=daemon.id)
        assert {line["message"] for line in lines} == expected, q
        assert [line["id"] for line in lines] == sorted((line["id"] for line in lines),
                                                        reverse=True)  # fmt: skip
        assert expected, f"{q!r} should match something here"
