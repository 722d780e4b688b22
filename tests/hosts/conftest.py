"""The host suite's cluster (namespaces, private services, workers), shared by a module's
tests, which run in order. Skips without namespaces on a developer machine; fails in CI."""

from __future__ import annotations

import os

import pytest
from flask_migrate import upgrade
from sqlalchemy import select

from stashhog import create_app
from stashhog.extensions import db
from stashhog.models import ClusterState
from tests.hosts import hosts
from tests.hosts.cluster import HostCluster
from tests.support import services
from tests.support.wait import eventually

FULL = os.environ.get("STASHHOG_CHAOS") == "full"
TRIALS = 10 if FULL else 1


@pytest.fixture(scope="session", autouse=True)
def _sweep_namespaces():
    """What runs no longer alive left goes first; this run's own goes at its end."""
    if os.geteuid() == 0:
        hosts.sweep_stale()
    yield
    if os.geteuid() == 0:
        hosts.sweep_stale(only=hosts.PREFIX)


@pytest.fixture(scope="module")
def cluster():
    try:
        hosts.check_available()
    except hosts.HostsUnavailable as exc:
        message = f"test hosts unavailable: {exc}"
        if services.IN_CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    built = HostCluster("tests.support.daemons")
    try:
        built.build()
        yield built
    finally:
        built.shutdown()


@pytest.fixture(scope="module")
def hosts_app(cluster):
    app = create_app({"TESTING": True, **cluster.config()})
    with app.app_context():
        upgrade(revision="head")
        db.session.remove()
    cluster.start_processes(app.extensions["celery"])
    with app.app_context():
        # The first pass ever is a cluster start (auto_start applies): let it happen first.
        first_pass = select(ClusterState).where(ClusterState.name == "supervisor")
        eventually(lambda: db.session.scalar(first_pass), timeout=60, interval=0.2)
        db.session.remove()
        yield app
        db.session.remove()
