"""Per-session isolation on the real PostgreSQL and Redis servers.

Each test session gets its own PostgreSQL database and its own Redis database number and key
prefix, so several sessions (and developers) can run the suite at once on one machine.
"""

from __future__ import annotations

import os
import uuid

import psycopg2
import pytest
import redis
from sqlalchemy.engine import make_url

from stashhog.config import normalise_database_url

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
# Every app and subprocess of the tests is on PostgreSQL or a temporary SQLite, so each needs
# a SECRET_KEY: the built-in one is refused outside the embedded default.
TEST_SECRET_KEY = "stashhog-tests-secret-key"


# Only a failure to connect means "service missing"; any other error is a real failure.
CONNECTION_ERRORS = (psycopg2.OperationalError, redis.ConnectionError, redis.TimeoutError)


def unavailable(what: str, exc: Exception) -> None:
    """Skip on a developer machine without the service; fail loudly in CI."""
    if not isinstance(exc, CONNECTION_ERRORS):
        raise exc
    message = f"{what} is not reachable: {exc}"
    if IN_CI:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def create_test_database() -> str:
    """Create an empty database beside TEST_DATABASE_URL's and return its URL."""
    base = make_url(
        normalise_database_url(os.environ.get("TEST_DATABASE_URL", DEFAULT_DATABASE_URL))
    )
    name = f"stashhog_test_{uuid.uuid4().hex[:10]}"
    conn = _admin_connection(base)
    try:
        conn.cursor().execute(f'CREATE DATABASE "{name}"')
    finally:
        conn.close()
    return base.set(database=name).render_as_string(hide_password=False)


def drop_test_database(url: str) -> None:
    target = make_url(url)
    conn = _admin_connection(target)
    try:
        cur = conn.cursor()
        cur.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
            (target.database,),
        )
        cur.execute(f'DROP DATABASE IF EXISTS "{target.database}"')
    finally:
        conn.close()


def _admin_connection(url):
    conn = psycopg2.connect(
        host=url.host,
        port=url.port or 5432,
        user=url.username,
        password=url.password,
        dbname="postgres" if url.database != "postgres" else "template1",
        connect_timeout=3,
    )
    conn.autocommit = True
    return conn


def claim_redis_database() -> tuple[str, redis.Redis]:
    """Claim a free Redis database number (1-15) for this session; returns its URL."""
    base = os.environ.get("TEST_REDIS_URL", DEFAULT_REDIS_URL)
    admin = redis.Redis.from_url(base, socket_connect_timeout=2)
    admin.ping()
    for number in range(1, 16):
        if admin.set(f"stashhog-test-claim:{number}", os.getpid(), nx=True, ex=3600):
            url = base.rsplit("/", 1)[0] + f"/{number}"
            client = redis.Redis.from_url(url)
            client.flushdb()
            return url, client
    raise RuntimeError("no free Redis database number for the test session")


def release_redis_database(url: str) -> None:
    base = os.environ.get("TEST_REDIS_URL", DEFAULT_REDIS_URL)
    number = url.rsplit("/", 1)[1]
    client = redis.Redis.from_url(url)
    client.flushdb()
    redis.Redis.from_url(base).delete(f"stashhog-test-claim:{number}")
