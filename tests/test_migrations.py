"""Migrations go up and down cleanly on PostgreSQL and on the embedded SQLite default."""

import pytest
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect, select

from stashhog import create_app
from stashhog.extensions import db
from stashhog.models import Daemon
from tests.support import services

TABLES = {"daemons", "daemon_logs", "daemon_job_history", "jobs"}


def migrate_round_trip(url: str) -> None:
    app = create_app(
        {"SQLALCHEMY_DATABASE_URI": url, "TESTING": True, "SECRET_KEY": services.TEST_SECRET_KEY}
    )
    with app.app_context():
        upgrade(revision="head")
        assert TABLES <= set(inspect(db.engine).get_table_names())
        seed = db.session.scalars(select(Daemon).where(Daemon.name == "Test Daemon")).one()
        assert seed.type == "TEST_DAEMON"
        assert seed.status == "STOPPED" and seed.auto_start is False and seed.enabled is True
        assert seed.configuration == {
            "log_interval": 5,
            "job_interval": 30,
            "heartbeat_interval": 10,
            "simulate_errors": False,
        }
        db.session.remove()
        downgrade(revision="base")
        assert not TABLES & set(inspect(db.engine).get_table_names())
        db.engine.dispose()


def test_migrations_round_trip_on_sqlite(tmp_path):
    migrate_round_trip(f"sqlite:///{tmp_path}/embedded.db")


def test_migrations_round_trip_on_postgresql():
    try:
        url = services.create_test_database()
    except Exception as exc:
        services.unavailable("PostgreSQL", exc)
    try:
        migrate_round_trip(url)
    finally:
        services.drop_test_database(url)


@pytest.mark.usefixtures("app_ctx")
def test_configuration_is_jsonb_on_postgresql():
    columns = {c["name"]: c for c in inspect(db.engine).get_columns("daemons")}
    assert type(columns["configuration"]["type"]).__name__ == "JSONB"
