"""``flask daemons types|create|set|delete``: daemons from types, edited and removed."""

from __future__ import annotations

import json

from stashhog.extensions import db
from stashhog.models import Daemon


def row(name: str) -> Daemon | None:
    db.session.expire_all()
    return db.session.scalars(db.select(Daemon).where(Daemon.name == name)).first()


def test_types_lists_every_type_with_its_keys(cli, clean_db):
    result = cli("types")
    assert result.exit_code == 0, result.output
    assert "TEST_DAEMON:" in result.output and "METADATA_GENERATE_WATCHER:" in result.output
    assert "log_interval" in result.output and "roots" in result.output
    as_json = json.loads(cli("types", "--json").output)
    assert {entry["type"] for entry in as_json} >= {"TEST_DAEMON", "METADATA_GENERATE_WATCHER"}


def test_create_with_config_and_set(cli, clean_db):
    result = cli(
        "create", "cli made", "--type", "TEST_DAEMON",
        "--config", '{"log_interval": 3}', "--set", "simulate_errors=true",
        "--set", 'job_metadata={"steps": 2}', "--auto-start", "--restart-policy", "always",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.output.startswith("created cli made (TEST_DAEMON, STOPPED)")
    daemon = row("cli made")
    assert daemon.configuration == {
        "log_interval": 3,
        "simulate_errors": True,
        "job_metadata": {"steps": 2},
    }
    assert daemon.auto_start is True and daemon.restart_policy == "always"


def test_create_refuses_a_bad_value_naming_it(cli, clean_db):
    result = cli("create", "bad", "--type", "TEST_DAEMON", "--set", "log_interval=-1")
    assert result.exit_code == 1
    assert "log_interval" in result.output
    assert row("bad") is None
    result = cli("create", "bad", "--type", "NOPE")
    assert result.exit_code == 1 and "unknown daemon type" in result.output
    result = cli("create", "bad", "--type", "TEST_DAEMON", "--max-restarts", "-3")
    assert result.exit_code == 1 and "--max-restarts" in result.output
    assert row("bad") is None


def test_create_twice_is_refused(cli, clean_db):
    assert cli("create", "twin", "--type", "TEST_DAEMON").exit_code == 0
    result = cli("create", "twin", "--type", "TEST_DAEMON")
    assert result.exit_code == 1 and "already exists" in result.output


def test_set_changes_settings_and_configuration(cli, make_daemon):
    daemon = make_daemon(name="tunable")
    result = cli(
        "set", "tunable", "--set", "log_interval=7", "--restart-policy", "never",
        "--max-restarts", "2", "--restart-window", "60", "--disabled", "--rename", "tuned",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "changed" in result.output
    tuned = row("tuned")
    assert tuned.id == daemon.id and tuned.configuration == {"log_interval": 7}
    assert (tuned.restart_policy, tuned.max_restarts, tuned.restart_window) == ("never", 2, 60)
    assert tuned.enabled is False


def test_delete_asks_first_and_removes_the_daemon(cli, make_daemon, app):
    make_daemon(name="doomed")
    runner = app.test_cli_runner()
    kept = runner.invoke(args=["daemons", "delete", "doomed"], input="n\n")
    assert kept.exit_code == 1 and row("doomed") is not None
    result = runner.invoke(args=["daemons", "delete", "doomed"], input="y\n")
    assert result.exit_code == 0, result.output
    assert "deleted doomed" in result.output and row("doomed") is None


def test_delete_of_a_running_daemon_is_refused(cli, make_daemon):
    make_daemon(name="busy", status="RUNNING", desired_state="RUNNING")
    result = cli("delete", "busy", "--yes")
    assert result.exit_code == 1 and "stop it first" in result.output
    assert row("busy") is not None
