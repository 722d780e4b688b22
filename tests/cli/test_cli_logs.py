"""``flask daemons logs`` (and ``logs -f``), run for real against PostgreSQL and Redis."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import psutil
import pytest

from stashhog.extensions import db
from stashhog.models import Daemon, DaemonLog
from stashhog.services.daemon_logs import LogLine, write_log_batch


def add_logs(daemon: Daemon, *lines: tuple[str, str], start: datetime | None = None) -> None:
    """Write log rows directly, one second apart, without publishing them."""
    start = start or datetime.now(UTC) - timedelta(minutes=1)
    db.session.add_all(
        DaemonLog(daemon_id=daemon.id, level=level, message=message, generation=daemon.generation,
                  seq=index, created_at=start + timedelta(seconds=index))
        for index, (level, message) in enumerate(lines, start=1)
    )  # fmt: skip
    db.session.commit()


def messages(stdout: str) -> list[str]:
    """``LEVEL message`` of each line of ``logs`` output (the time column dropped)."""
    return [" ".join(line.split(maxsplit=2)[1:]) for line in stdout.splitlines()]


# -- logs --------------------------------------------------------------------------------


def test_logs_prints_the_latest_lines_oldest_first(cli, make_daemon):
    daemon = make_daemon("cli-logs")
    add_logs(daemon, *[("INFO", f"line {n}") for n in range(1, 6)])
    result = cli("logs", "cli-logs", "--limit", "3")
    assert result.exit_code == 0, result.output
    assert messages(result.stdout) == ["INFO line 3", "INFO line 4", "INFO line 5"]


def test_logs_level_means_that_level_and_above(cli, make_daemon):
    daemon = make_daemon("cli-levels")
    add_logs(daemon, ("DEBUG", "d"), ("INFO", "i"), ("WARNING", "w"), ("ERROR", "e"))
    result = cli("logs", str(daemon.id), "--level", "warning")
    assert result.exit_code == 0, result.output
    assert messages(result.stdout) == ["WARNING w", "ERROR e"]


def test_logs_json_is_a_chronological_array(cli, make_daemon):
    daemon = make_daemon("cli-logs-json")
    add_logs(daemon, ("INFO", "first"), ("ERROR", "second\nwith a traceback"))
    result = cli("logs", "cli-logs-json", "--json")
    assert result.exit_code == 0, result.output
    lines = json.loads(result.stdout)
    assert [line["message"] for line in lines] == ["first", "second\nwith a traceback"]
    assert lines[0]["id"] < lines[1]["id"]
    assert set(lines[0]) >= {"id", "daemon_id", "level", "message", "created_at", "seq"}


def test_logs_since_skips_older_lines(cli, make_daemon):
    daemon = make_daemon("cli-since")
    start = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
    add_logs(daemon, ("INFO", "old"), ("INFO", "new"), start=start)
    result = cli("logs", "cli-since", "--since", "2025-01-01T12:00:02Z")
    assert result.exit_code == 0, result.output
    assert messages(result.stdout) == ["INFO new"]


def test_multiline_messages_stay_under_their_first_line(cli, make_daemon):
    daemon = make_daemon("cli-multiline")
    add_logs(daemon, ("ERROR", "boom\nTraceback"))
    first, second = cli("logs", "cli-multiline").stdout.splitlines()
    assert second.strip() == "Traceback"
    assert second.index("Traceback") == first.index("boom")


@pytest.mark.parametrize(
    ("option", "value"), [("--level", "LOUD"), ("--since", "yesterday"), ("--limit", "0")]
)
def test_logs_bad_option_is_a_usage_error(cli, make_daemon, option, value):
    make_daemon("cli-bad-option")
    result = cli("logs", "cli-bad-option", option, value)
    assert result.exit_code == 2
    assert f"Invalid value for '{option}'" in result.stderr


# -- logs -f -----------------------------------------------------------------------------


def publish_lines(daemon: Daemon, first_seq: int, *lines: tuple[str, str]) -> None:
    """Write and publish lines as a running instance would."""
    batch = [
        LogLine(seq, level, message, datetime.now(UTC))
        for seq, (level, message) in enumerate(lines, start=first_seq)
    ]
    write_log_batch(daemon.id, daemon.generation, batch)


def test_logs_follow_prints_every_line_once_in_order_and_ctrl_c_exits_0(make_daemon, follow):
    daemon = make_daemon("cli-follow")
    add_logs(daemon, ("INFO", "old 1"), ("INFO", "old 2"))
    process = follow("cli-follow", "--limit", "1")
    process.expect("old 2")
    publish_lines(daemon, 3, ("INFO", "live 3"), ("DEBUG", "live 4"))
    process.expect("live 4")
    # A line whose publish was lost: the next batch does not continue the last one seen.
    db.session.add(DaemonLog(daemon_id=daemon.id, level="INFO", message="unpublished 5",
                             generation=daemon.generation, seq=5))  # fmt: skip
    db.session.commit()
    publish_lines(daemon, 6, ("WARNING", "live 6"))
    process.expect("live 6")
    assert process.interrupt() == 0
    assert messages("\n".join(process.lines)) == [
        "INFO old 2", "INFO live 3", "DEBUG live 4", "INFO unpublished 5", "WARNING live 6",
    ]  # fmt: skip


def test_logs_follow_json_prints_one_object_per_line_at_the_level(make_daemon, follow):
    daemon = make_daemon("cli-follow-json")
    add_logs(daemon, ("DEBUG", "old debug"), ("ERROR", "old error"))
    process = follow("cli-follow-json", "--json", "--level", "WARNING")
    process.expect("old error")
    publish_lines(daemon, 3, ("INFO", "live info"), ("WARNING", "live warning"))
    process.expect("live warning")
    assert process.interrupt() == 0
    printed = [json.loads(line) for line in process.lines]
    assert [(line["level"], line["message"]) for line in printed] == [
        ("ERROR", "old error"), ("WARNING", "live warning"),
    ]  # fmt: skip


def test_logs_follow_catches_up_after_its_redis_connection_is_killed(app, make_daemon, follow):
    daemon = make_daemon("cli-follow-reconnect")
    process = follow("cli-follow-reconnect")
    publish_lines(daemon, 1, ("INFO", "before"))
    process.expect("before")
    kill_redis_connections(app, process.proc.pid)
    publish_lines(daemon, 2, ("INFO", "during 2"))  # may be published while unsubscribed
    db.session.add(DaemonLog(daemon_id=daemon.id, level="INFO", message="during 3",
                             generation=daemon.generation, seq=3))  # fmt: skip
    db.session.commit()
    publish_lines(daemon, 4, ("INFO", "after 4"))
    process.expect("after 4")
    assert process.interrupt() == 0
    assert "reconnecting" in process.stderr
    assert messages("\n".join(process.lines)) == [
        "INFO before", "INFO during 2", "INFO during 3", "INFO after 4",
    ]  # fmt: skip


def kill_redis_connections(app, pid: int) -> None:
    """CLIENT KILL the pub/sub connections of one process (and no one else's)."""
    client = app.extensions["redis"]
    port = client.connection_pool.connection_kwargs["port"]
    mine = [
        conn.laddr
        for conn in psutil.Process(pid).net_connections(kind="tcp")
        if conn.raddr and conn.raddr.port == port
    ]
    killed = sum(
        client.client_kill_filter(_type="pubsub", addr=f"{laddr.ip}:{laddr.port}") for laddr in mine
    )
    assert killed == 1
