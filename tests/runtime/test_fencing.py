"""Generation fencing: a superseded instance's writes change nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from stashhog.extensions import db
from stashhog.models import Daemon, DaemonJobAction
from stashhog.services.daemon_history import record_job_action
from stashhog.services.daemon_logs import LogLine, write_log_batch
from stashhog.services.daemon_state import change_daemon
from stashhog.services.fencing import Fenced


@pytest.fixture
def superseded(make_daemon):
    """A daemon now owned by generation 8, and the stale generation 7."""
    daemon = make_daemon(generation=8, status="RUNNING", desired_state="RUNNING")
    return daemon.id, 7


def test_a_stale_generation_cannot_change_the_row(superseded):
    daemon_id, stale = superseded
    assert change_daemon(daemon_id, if_generation=stale, status="STOPPED") is None
    db.session.expire_all()
    assert db.session.get(Daemon, daemon_id).status == "RUNNING"
    assert change_daemon(daemon_id, if_generation=8, status_line="ok")["status_line"] == "ok"


def test_a_stale_generation_cannot_write_logs(superseded):
    daemon_id, stale = superseded
    line = LogLine(1, "INFO", "from the past", datetime.now(UTC))
    with pytest.raises(Fenced):
        write_log_batch(daemon_id, stale, [line])
    assert write_log_batch(daemon_id, 8, [line])[0]["message"] == "from the past"


def test_a_stale_generation_cannot_write_history(superseded):
    daemon_id, stale = superseded
    with pytest.raises(Fenced):
        record_job_action(daemon_id, stale, None, DaemonJobAction.MONITORED, "stale")
