"""``flask daemons create|set --depends-on``, ``deps`` and ``stop --no-cascade``."""

from __future__ import annotations

import json

import pytest

from stashhog.extensions import db
from stashhog.models import Daemon
from tests.api.conftest import stop_everything  # noqa: F401  (a fixture)
from tests.support.dependencies import TICKER


def row(name: str) -> Daemon | None:
    db.session.expire_all()
    return db.session.scalars(db.select(Daemon).where(Daemon.name == name)).first()


def test_depends_on_by_name_shown_in_deps_and_cleared(cli, make_daemon):
    base = make_daemon("cli-base")
    result = cli("create", "cli-top", "--type", "TEST_DAEMON", "--depends-on", "cli-base")
    assert result.exit_code == 0, result.output
    assert row("cli-top").depends_on == [str(base.id)]
    result = cli("deps")
    assert result.exit_code == 0, result.output
    lines = {line.split()[1]: line for line in result.output.splitlines()[1:]}
    assert "cli-top" in lines["cli-base"] and "cli-base" in lines["cli-top"]
    graph = json.loads(cli("deps", "--json").output)
    names = [d["name"] for d in graph["daemons"]]
    assert names.index("cli-base") < names.index("cli-top")
    result = cli("set", "cli-top", "--no-depends-on")
    assert result.exit_code == 0 and "changed depends_on" in result.output
    assert row("cli-top").depends_on == []


def test_a_cycle_an_unknown_daemon_and_deleting_a_needed_one_are_refused(cli, make_daemon):
    base = make_daemon("cli-base")
    make_daemon("cli-top", depends_on=[str(base.id)])
    result = cli("set", "cli-base", "--depends-on", "cli-top")
    assert result.exit_code == 1
    assert "cycle: cli-base → cli-top → cli-base" in result.output
    result = cli("set", "cli-base", "--depends-on", "nobody")
    assert result.exit_code == 1 and "no daemon 'nobody'" in result.output
    result = cli("delete", "cli-base", "--yes")
    assert result.exit_code == 1 and "needed by cli-top" in result.output
    assert row("cli-base").depends_on == [] and row("cli-base") is not None


@pytest.mark.usefixtures("daemons_worker", "stop_everything")
def test_start_brings_up_what_it_needs_and_stop_no_cascade_refuses(cli, make_daemon):
    make_daemon("cli-base", type="TEST_TICKER", configuration=TICKER)
    base = row("cli-base")
    make_daemon("cli-top", type="TEST_TICKER", configuration=TICKER, depends_on=[str(base.id)])
    result = cli("start", "cli-top", "--wait", "20")
    assert result.exit_code == 0, result.output
    assert "started first: cli-base" in result.output
    result = cli("stop", "cli-base", "--no-cascade")
    assert result.exit_code == 1 and "needed by cli-top" in result.output
    assert row("cli-base").status == "RUNNING"
    result = cli("stop", "cli-base", "--wait", "10")
    assert result.exit_code == 0, result.output
    assert "stopped first: cli-top" in result.output
    assert row("cli-top").status == row("cli-base").status == "STOPPED"
