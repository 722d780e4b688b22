"""``flask daemons create|set`` with the resource limits: set, cleared with ``none``, and
refused naming the option."""

from __future__ import annotations

import json

from stashhog.services.daemon_queries import get_daemon


def limits(daemon_id) -> tuple:
    shown = get_daemon(daemon_id)
    return shown["max_memory_mb"], shown["max_cpu_percent"], shown["limit_action"]


def test_set_and_clear_limits(cli, make_daemon):
    daemon = make_daemon(name="cli-limited")
    result = cli("set", "cli-limited", "--max-memory-mb", "128", "--max-cpu-percent", "75",
                 "--limit-action", "warn")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert limits(daemon.id) == (128, 75.0, "warn")
    result = cli("set", "cli-limited", "--max-memory-mb", "none")
    assert result.exit_code == 0 and "changed max_memory_mb" in result.output, result.output
    assert limits(daemon.id) == (None, 75.0, "warn")
    refused = cli("set", "cli-limited", "--max-memory-mb", "8")
    assert refused.exit_code != 0 and "--max-memory-mb" in refused.output
    assert limits(daemon.id) == (None, 75.0, "warn")


def test_create_with_limits(cli, clean_db):
    refused = cli("create", "cli-new", "--type", "TEST_DAEMON", "--max-cpu-percent", "lots")
    assert refused.exit_code != 0 and "'lots' is not a number or 'none'" in refused.output
    made = cli("create", "cli-new", "--type", "TEST_DAEMON", "--max-memory-mb", "32",
               "--limit-action", "stop", "--json")  # fmt: skip
    assert made.exit_code == 0, made.output
    created = json.loads(made.output)
    assert (created["max_memory_mb"], created["limit_action"]) == (32, "stop")
