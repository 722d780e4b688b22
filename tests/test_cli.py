"""``flask daemons …`` commands, run for real against PostgreSQL, Redis and a Celery worker."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import psutil
import pytest

from stashhog.extensions import db
from stashhog.models import Daemon, DaemonJobHistory, DaemonLog
from stashhog.services.daemon_logs import LogLine, write_log_batch
from tests.support.workers import ROOT


@pytest.fixture
def cli(app):
    runner = app.test_cli_runner()

    def invoke(*args: str):
        return runner.invoke(args=["daemons", *args])

    return invoke


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


# -- logs -f -----------------------------------------------------------------------------


class FollowProcess:
    """``flask daemons logs -f`` in a subprocess; its stdout read line by line."""

    def __init__(self, env: dict, *args: str) -> None:
        command = [sys.executable, "-m", "flask", "--app", "app", "daemons", "logs", "-f", *args]
        self.proc = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.lines: list[str] = []
        self.stderr = ""
        self._queue: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))

    def expect(self, text: str, timeout: float = 20.0) -> None:
        """Wait until a printed line contains ``text``."""
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            remaining = deadline - time.monotonic()
            if self.proc.poll() is not None and self._queue.empty():
                raise AssertionError(f"exited {self.proc.returncode}: {self.proc.stderr.read()}")
            if remaining <= 0:
                raise AssertionError(f"{text!r} not printed; got {self.lines}")
            try:
                self.lines.append(self._queue.get(timeout=min(remaining, 0.5)))
            except queue.Empty:
                pass

    def interrupt(self) -> int:
        """Ctrl-C; returns the exit code."""
        self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(10)
        self.stderr = self.proc.stderr.read()
        time.sleep(0.2)  # let the reader thread drain the pipe
        while not self._queue.empty():
            self.lines.append(self._queue.get())
        return code

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def follow(worker_env):
    started: list[FollowProcess] = []

    def start(*args: str) -> FollowProcess:
        started.append(FollowProcess(worker_env, *args))
        return started[-1]

    yield start
    for process in started:
        process.stop()


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
