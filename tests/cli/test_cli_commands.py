"""``flask daemons …`` commands other than ``logs``, run for real against PostgreSQL, Redis and
a Celery worker."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from stashhog.extensions import db
from stashhog.models import Daemon, DaemonJobHistory

# -- list and errors ---------------------------------------------------------------------


def test_list_json_has_every_daemon_with_its_status(cli, make_daemon):
    made = make_daemon("cli-listed")
    result = cli("list", "--json")
    assert result.exit_code == 0, result.output
    by_name = {daemon["name"]: daemon for daemon in json.loads(result.stdout)}
    assert {"Test Daemon", "cli-listed"} <= by_name.keys()
    assert by_name["cli-listed"]["id"] == str(made.id)
    assert by_name["cli-listed"]["status"] == "STOPPED"


def test_list_prints_an_aligned_table(cli, make_daemon):
    make_daemon("cli-a-much-longer-daemon-name")
    result = cli("list")
    assert result.exit_code == 0, result.output
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["NAME", "TYPE", "STATUS", "HEALTH", "ENABLED", "UPTIME", "ID"]
    assert len(rows) == 2  # with the seed "Test Daemon"
    row = next(row for row in rows if row.startswith("cli-a-much-longer-daemon-name"))
    assert row[header.index("STATUS") :].startswith("STOPPED ")
    assert row[header.index("ENABLED") :].startswith("yes ")


@pytest.mark.parametrize(
    "command", [["start"], ["stop"], ["restart"], ["logs"], ["logs", "-f"], ["history"]]
)
def test_unknown_daemon_exits_2_with_one_line_on_stderr(cli, clean_db, command):
    result = cli(*command, "no-such-daemon")
    assert result.exit_code == 2
    assert result.stderr == "error: no daemon 'no-such-daemon'\n"
    assert result.stdout == ""


def test_starting_a_disabled_daemon_exits_1_with_the_reason(cli, make_daemon):
    make_daemon("cli-disabled", enabled=False)
    result = cli("start", "cli-disabled", "--json")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: daemon 'cli-disabled' is disabled")
    assert result.stderr.count("\n") == 1
    assert result.stdout == ""


def test_stopping_a_stopped_daemon_by_id_reports_no_change(cli, make_daemon):
    daemon = make_daemon("cli-idle")
    result = cli("stop", str(daemon.id), "--json")
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["changed"] is False
    assert body["daemon"]["status"] == "STOPPED"
    text = cli("stop", "cli-idle")
    assert text.stdout == "cli-idle: daemon is already stopped (status STOPPED)\n"


# -- history and health ------------------------------------------------------------------


def test_history_json_lists_the_latest_entries_oldest_first(cli, make_daemon):
    daemon = make_daemon("cli-history")
    start = datetime.now(UTC) - timedelta(minutes=1)
    db.session.add_all(
        DaemonJobHistory(daemon_id=daemon.id, action=action, reason=f"step {n}",
                         created_at=start + timedelta(seconds=n))
        for n, action in enumerate(["LAUNCHED", "MONITORED", "LAUNCHED"])
    )  # fmt: skip
    db.session.commit()
    result = cli("history", "cli-history", "--limit", "2", "--json")
    assert result.exit_code == 0, result.output
    assert [e["reason"] for e in json.loads(result.stdout)] == ["step 1", "step 2"]
    table = cli("history", "cli-history", "--action", "monitored")
    assert table.exit_code == 0, table.output
    assert "step 1" in table.stdout and "step 2" not in table.stdout


def test_health_json_puts_stopped_daemons_under_stopped(cli, make_daemon):
    make_daemon("cli-health")
    result = cli("health", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report) >= {"healthy", "unhealthy", "stopped"}
    assert "cli-health" in {daemon["name"] for daemon in report["stopped"]}


def test_health_exits_1_and_names_unhealthy_daemons(cli, make_daemon):
    make_daemon("cli-broken", desired_state="RUNNING", status="ERROR", last_error="boom")
    result = cli("health")
    assert result.exit_code == 1
    assert result.stderr == "error: 1 unhealthy: cli-broken\n"
    row = next(line for line in result.stdout.splitlines() if line.startswith("cli-broken"))
    assert row.split()[1:3] == ["ERROR", "unhealthy"] and row.endswith("boom")


# -- a real daemon -----------------------------------------------------------------------


@pytest.fixture
def test_daemon(clean_db, cli):
    """The seed "Test Daemon", logging every 0.2 s; stopped again afterwards."""
    daemon = db.session.scalar(db.select(Daemon).where(Daemon.name == "Test Daemon"))
    daemon.configuration = {"log_interval": 0.2, "heartbeat_interval": 1}
    db.session.commit()
    yield daemon
    cli("stop", "Test Daemon", "--wait", "20")


def test_start_stop_a_real_daemon_by_name(cli, daemons_worker, test_daemon, follow):
    started = cli("start", "Test Daemon", "--wait", "20", "--json")
    assert started.exit_code == 0, started.output
    body = json.loads(started.stdout)
    assert body["changed"] is True and body["daemon"]["status"] == "RUNNING"

    again = cli("start", "Test Daemon")
    assert again.exit_code == 0
    assert again.stdout == "Test Daemon: daemon is already running (status RUNNING)\n"

    process = follow("Test Daemon", "--level", "DEBUG")
    process.expect("DEBUG    Iteration")
    first = iterations(process.lines)[0]
    process.expect(f"Iteration {first + 10}")
    assert process.interrupt() == 0
    seen = iterations(process.lines)
    assert seen == list(range(first, first + len(seen)))  # none lost, none twice

    health = json.loads(cli("health", "--json").stdout)
    assert "Test Daemon" in {daemon["name"] for daemon in health["healthy"]}

    stopped = cli("stop", "Test Daemon", "--wait", "20", "--json")
    assert stopped.exit_code == 0, stopped.output
    assert json.loads(stopped.stdout)["daemon"]["status"] == "STOPPED"
    logs = cli("logs", "Test Daemon", "--limit", "1000", "--level", "INFO").stdout
    assert "Test daemon stopping" in logs and "DEBUG" not in logs


def iterations(lines: list[str]) -> list[int]:
    """The numbers of TestDaemon's ``Iteration N`` debug lines."""
    return [int(line.rsplit(" ", 1)[1]) for line in lines if " DEBUG " in line]


def test_restart_runs_a_new_generation(cli, daemons_worker, test_daemon):
    first = json.loads(cli("start", "Test Daemon", "--wait", "20", "--json").stdout)
    result = cli("restart", str(test_daemon.id), "--wait", "20", "--json")
    assert result.exit_code == 0, result.output
    daemon = json.loads(result.stdout)["daemon"]
    assert daemon["status"] == "RUNNING"
    assert daemon["generation"] > first["daemon"]["generation"]
