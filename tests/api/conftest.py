"""Fixtures for the REST API tests: rows to read back, and proof that refused requests wrote
nothing."""

from __future__ import annotations

import contextlib
import json
import socket
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from stashhog import create_app
from stashhog.api.responses import ErrorResponse
from stashhog.extensions import db
from stashhog.models import Daemon, DaemonJobHistory, DaemonLog, Job, JobStatus, JobType
from stashhog.services import daemon_control, daemon_queries
from stashhog.services.daemon_control import wait_for_status

UNKNOWN = str(uuid.uuid4())


def set_row(daemon_id, **values) -> None:
    row = db.session.get(Daemon, daemon_id)
    for name, value in values.items():
        setattr(row, name, value)
    db.session.commit()


def error_of(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json
    error = ErrorResponse.model_validate(response.get_json()).error
    assert "Traceback" not in error.message
    if code:
        assert error.code == code
    return response.get_json()["error"]


def next_event(pubsub, event_type: str, timeout: float = 3) -> dict:
    """The next event of ``event_type`` heard on ``pubsub`` (others are skipped)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = pubsub.get_message(timeout=0.2)
        if message and json.loads(message["data"])["type"] == event_type:
            return json.loads(message["data"])
    raise AssertionError(f"no {event_type} event within {timeout}s")


def table_rows() -> dict[str, list[dict]]:
    """Every row of every table, in a stable order."""
    state = {}
    with db.engine.connect() as conn:
        for table in ("daemons", "jobs", "daemon_logs", "daemon_job_history"):
            rows = conn.execute(text(f"SELECT * FROM {table} ORDER BY id"))
            state[table] = [dict(row._mapping) for row in rows]
    return state


@pytest.fixture
def unchanged(app_ctx):
    """``with unchanged(): ...`` fails if anything in the database changed inside."""

    @contextlib.contextmanager
    def check():
        before = table_rows()
        yield
        assert table_rows() == before, "a refused request changed the database"

    return check


@pytest.fixture
def daemon(make_daemon):
    """A stopped, enabled TEST_DAEMON with a little stored configuration."""
    return make_daemon(configuration={"log_interval": 2.0})


@pytest.fixture
def add_logs(app_ctx):
    """Insert log lines ``[(level, message), ...]`` one second apart; returns them in order."""

    def add(daemon, lines, start: datetime | None = None) -> list[DaemonLog]:
        start = start or datetime.now(UTC) - timedelta(seconds=len(lines))
        rows = [
            DaemonLog(
                daemon_id=daemon.id,
                level=level,
                message=message,
                created_at=start + timedelta(seconds=number),
                generation=1,
                seq=number,
            )
            for number, (level, message) in enumerate(lines)
        ]
        db.session.add_all(rows)
        db.session.commit()
        return rows

    return add


@pytest.fixture
def add_job(app_ctx):
    """Insert a job row directly (nothing is queued), e.g. a pending job no worker will run."""

    def add(status: str = JobStatus.PENDING, daemon=None, **fields) -> Job:
        job = Job(
            id=uuid.uuid4(),
            type=fields.pop("type", JobType.TEST),
            status=status,
            job_metadata=fields.pop("job_metadata", {"steps": 1}),
            daemon_id=daemon.id if daemon else None,
            **fields,
        )
        db.session.add(job)
        db.session.commit()
        return job

    return add


@pytest.fixture
def add_history(app_ctx):
    def add(daemon, job, action: str, reason: str | None = None, at: datetime | None = None):
        entry = DaemonJobHistory(
            daemon_id=daemon.id,
            job_id=job.id if job else None,
            action=action,
            reason=reason,
            created_at=at or datetime.now(UTC),
        )
        db.session.add(entry)
        db.session.commit()
        return entry

    return add


@pytest.fixture
def stop_everything(app_ctx):
    """After the test, stop every daemon it started and wait for them to settle."""
    yield
    daemon_control.stop_all()
    for daemon in daemon_queries.list_daemons():
        if daemon["status"] not in ("STOPPED", "ERROR"):
            wait_for_status(uuid.UUID(daemon["id"]), {"STOPPED", "ERROR"}, 10)


@pytest.fixture
def seed_disabled(clean_db):
    """The seed daemon disabled for the test (so bulk actions leave it alone), then restored."""
    seed = db.session.scalars(db.select(Daemon).where(Daemon.name == "Test Daemon")).one()
    enabled, seed.enabled = seed.enabled, False
    db.session.commit()
    yield seed
    db.session.get(Daemon, seed.id).enabled = enabled
    db.session.commit()


def closed_port() -> int:
    """A local port nothing listens on: connecting is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def app_without_redis(app, database_url, redis_prefix):
    """The app on the session's database, with its Redis (broker and leases) unreachable."""
    broken = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": app.config["SECRET_KEY"],
            "SQLALCHEMY_DATABASE_URI": database_url,
            "REDIS_URL": f"redis://127.0.0.1:{closed_port()}/0",
            "REDIS_PREFIX": redis_prefix,
            "DAEMON_MODULES": app.config["DAEMON_MODULES"],
        }
    )
    app.extensions["celery"].set_default()
    yield broken
    with broken.app_context():
        db.engine.dispose()


@pytest.fixture
def app_without_database(app, redis_url, redis_prefix):
    broken = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": app.config["SECRET_KEY"],
            "SQLALCHEMY_DATABASE_URI": f"postgresql://postgres@127.0.0.1:{closed_port()}/none",
            "REDIS_URL": redis_url,
            "REDIS_PREFIX": redis_prefix,
        }
    )
    app.extensions["celery"].set_default()
    return broken
