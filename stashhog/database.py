"""Database wiring: Flask-SQLAlchemy, Flask-Migrate, and SQLite settings for the embedded
default (WAL and a busy timeout, since web, workers and beat write at once)."""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from sqlalchemy import event

from stashhog import models  # noqa: F401  (registers the tables on db.metadata)
from stashhog.config import ROOT
from stashhog.extensions import db, migrate

# A host cut off from PostgreSQL must get an error, not a call that hangs until TCP gives up
# (about 15 minutes): connects time out, and sent data unacknowledged for 5 s breaks the
# connection (tcp_user_timeout; keepalives find a dead idle one).
PG_CONNECT_ARGS = {
    "connect_timeout": 3,
    "tcp_user_timeout": 5000,
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 2,
}


def init_app(app: Flask) -> None:
    uri = app.config["SQLALCHEMY_DATABASE_URI"]
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {}
    elif uri.startswith("postgresql"):
        options = app.config["SQLALCHEMY_ENGINE_OPTIONS"] = dict(
            app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {}
        )
        options["connect_args"] = {**PG_CONNECT_ARGS, **options.get("connect_args", {})}
    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"))
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            event.listen(db.engine, "connect", _configure_sqlite)


def _configure_sqlite(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def dispose_engine_after_fork(app: Flask) -> None:
    """A forked child must not share its parent's pooled connections."""
    with app.app_context():
        db.engine.dispose(close=False)
