"""The data model on real PostgreSQL: JSONB round trip, unique names, cascades."""

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from stashhog.extensions import db
from stashhog.models import Daemon, DaemonLog, LogLevel


def test_configuration_round_trips_nested_json(make_daemon):
    config = {"a": 1, "nested": {"list": [1, "two", None], "flag": True}, "text": "ü ✓"}
    daemon = make_daemon(configuration=config)
    db.session.expire_all()
    assert db.session.get(Daemon, daemon.id).configuration == config


def test_jsonb_can_be_queried_by_key(make_daemon):
    daemon = make_daemon(configuration={"log_interval": 7})
    found = db.session.scalars(
        # as_float: other rows (the seed, reconfigured by other tests) may hold 0.2 there.
        select(Daemon).where(Daemon.configuration["log_interval"].as_float() == 7)
    ).all()
    assert [d.id for d in found] == [daemon.id]


def test_daemon_names_are_unique(make_daemon):
    make_daemon(name="only-one")
    db.session.add(Daemon(name="only-one", type="TEST_DAEMON", configuration={}))
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()


def test_timestamps_are_timezone_aware(make_daemon):
    daemon = make_daemon()
    db.session.expire_all()
    assert db.session.get(Daemon, daemon.id).created_at.tzinfo is not None


def test_deleting_a_daemon_deletes_its_logs(make_daemon):
    daemon = make_daemon()
    db.session.add(DaemonLog(daemon_id=daemon.id, level="INFO", message="hi"))
    db.session.commit()
    db.session.delete(daemon)
    db.session.commit()
    assert db.session.scalars(select(DaemonLog)).all() == []


def test_log_level_at_least_orders_by_severity():
    assert LogLevel.at_least("WARNING") == ["WARNING", "ERROR"]
    assert LogLevel.at_least(LogLevel.DEBUG) == ["DEBUG", "INFO", "WARNING", "ERROR"]
