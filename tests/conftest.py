"""Fixtures on the real PostgreSQL and Redis (see tests/support/services.py)."""

from __future__ import annotations

import os
import uuid

import pytest
from flask_migrate import upgrade
from sqlalchemy import text

from stashhog import config, create_app
from stashhog.auth.actor import forget_cli_actor
from stashhog.auth.roles import Role
from stashhog.extensions import db
from stashhog.models import Daemon, DaemonType
from tests.media.support import forget_media
from tests.support import access, services
from tests.support.workers import start_daemons_worker, start_jobs_worker

TEST_DAEMON_MODULES = "tests.support.daemons"


@pytest.fixture(scope="session", autouse=True)
def no_ambient_secret_key(tmp_path_factory):
    """Neither an exported SECRET_KEY nor the checkout's instance/secret_key reaches the tests'
    apps: each passes its own key, and one that forgets it is refused."""
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("SECRET_KEY", raising=False)
        patch.setattr(config, "SECRET_KEY_FILE", tmp_path_factory.mktemp("no-key") / "secret_key")
        yield


@pytest.fixture(scope="session")
def database_url():
    try:
        url = services.create_test_database()
    except Exception as exc:
        services.unavailable("PostgreSQL (TEST_DATABASE_URL)", exc)
    yield url
    services.drop_test_database(url)


@pytest.fixture(scope="session")
def redis_url():
    try:
        url, _client = services.claim_redis_database()
    except Exception as exc:
        services.unavailable("Redis (TEST_REDIS_URL)", exc)
    yield url
    services.release_redis_database(url)


@pytest.fixture(scope="session")
def redis_prefix():
    return f"stashhog-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def app(database_url, redis_url, redis_prefix):
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": services.TEST_SECRET_KEY,
            "SQLALCHEMY_DATABASE_URI": database_url,
            "REDIS_URL": redis_url,
            "REDIS_PREFIX": redis_prefix,
            "STOP_TIMEOUT": 5.0,
            "DAEMON_MODULES": TEST_DAEMON_MODULES,
        }
    )
    with app.app_context():
        upgrade(revision="head")
    return app


@pytest.fixture(scope="session")
def worker_env(database_url, redis_url, redis_prefix):
    """Environment for subprocesses (workers, beat, CLI) that share the test services."""
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        SECRET_KEY=services.TEST_SECRET_KEY,
        STASHHOG_REDIS_PREFIX=redis_prefix,
        STASHHOG_STOP_TIMEOUT="5",
        STASHHOG_DAEMON_MODULES=TEST_DAEMON_MODULES,
        PYTHONUNBUFFERED="1",
    )
    return env


@pytest.fixture
def app_ctx(app):
    with app.app_context():
        yield app
        db.session.remove()


@pytest.fixture(scope="session")
def role_tokens(app) -> dict[Role, str]:
    """An API token per role (users ``test-viewer``, ``test-operator``, ``test-admin``)."""
    return access.tokens_per_role(app)


@pytest.fixture
def client(app, role_tokens):
    """A test client acting as an admin (bearer token): what most API tests need."""
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {role_tokens[Role.ADMIN]}"
    return client


@pytest.fixture
def anonymous(app, role_tokens):
    """A test client with no credentials at all (the role users exist, so it can sign in
    as one: ``role_tokens`` creates them)."""
    return app.test_client()


@pytest.fixture
def client_as(app, role_tokens):
    """``client_as("viewer")``: a test client carrying that role's token."""

    def make(role: Role | str):
        client = app.test_client()
        client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {role_tokens[Role(role)]}"
        return client

    return make


@pytest.fixture
def clean_db(app_ctx):
    """Empty every table except the seed daemon, before the test."""
    db.session.execute(text("DELETE FROM daemon_job_history"))
    db.session.execute(text("DELETE FROM daemon_logs"))
    db.session.execute(text("DELETE FROM jobs"))
    db.session.execute(text("DELETE FROM daemons WHERE name <> 'Test Daemon'"))
    db.session.commit()
    return db


@pytest.fixture
def make_daemon(clean_db):
    """Factory for daemon rows."""

    def make(name: str | None = None, type: str = DaemonType.TEST_DAEMON, **fields) -> Daemon:
        daemon = Daemon(
            name=name or f"daemon-{uuid.uuid4().hex[:8]}",
            type=type,
            configuration=fields.pop("configuration", {}),
            **fields,
        )
        db.session.add(daemon)
        db.session.commit()
        return daemon

    return make


@pytest.fixture(scope="session")
def celery_app(app):
    return app.extensions["celery"]


@pytest.fixture(scope="session")
def daemons_worker(worker_env, celery_app):
    worker = start_daemons_worker(worker_env, celery_app)
    yield worker
    worker.stop()


@pytest.fixture(scope="session")
def jobs_worker(worker_env, celery_app):
    worker = start_jobs_worker(worker_env, celery_app)
    yield worker
    worker.stop()


@pytest.fixture(autouse=True)
def acting_as_the_system_again():
    """A CLI command run in-process makes the process act as ``cli:<user>`` (right for a real
    CLI process); the next test must not inherit that actor."""
    yield
    forget_cli_actor()


def pytest_collection_modifyitems(items):
    """Tests that drive Chromium run last, in their usual order. Playwright's sync API keeps
    an event loop running in the main thread from its start to the end of the session, and
    every later ``asyncio.run()`` (the log pipeline's and the runtime's tests) is refused."""
    items.sort(key=lambda item: "browser" in getattr(item, "fixturenames", ()))


@pytest.fixture
def media_db(clean_db, app):
    """An empty ``media_files`` table, and no cached thumbnails left behind."""
    forget_media(app)
    yield db
    forget_media(app)


@pytest.fixture
def library(tmp_path):
    """A library folder for the test's generated media."""
    folder = tmp_path / "library"
    folder.mkdir()
    return folder
