"""The chaos suite's private cluster, shared by the tests of a module (they run in order)."""

from __future__ import annotations

import os

import pytest
from flask_migrate import upgrade

from stashhog import create_app
from stashhog.extensions import db
from tests.chaos.cluster import Cluster
from tests.support import services

FULL = os.environ.get("STASHHOG_CHAOS") == "full"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    try:
        built = Cluster(tmp_path_factory.mktemp("chaos"), "tests.support.daemons")
    except Exception as exc:
        services.unavailable("PostgreSQL (TEST_DATABASE_URL)", exc)
    yield built
    built.shutdown()


@pytest.fixture(scope="module")
def chaos_app(cluster):
    app = create_app({"TESTING": True, **cluster.config()})
    cluster.redis.start()  # migrations first; Cluster.start() restarts it cleanly
    with app.app_context():
        upgrade(revision="head")
    cluster.redis.stop()
    cluster.start(app.extensions["celery"])
    with app.app_context():
        yield app
        db.session.remove()
