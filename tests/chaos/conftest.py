"""The chaos suite's private cluster, shared by the tests of a module (they run in order).

Its daemons workers' pool: ``make chaos`` (STASHHOG_CHAOS=full) runs the module once per pool,
prefork then threads; otherwise the one STASHHOG_TEST_DAEMON_POOL names (default prefork)."""

from __future__ import annotations

import os

import pytest

from tests.chaos.cluster import cluster_app, private_cluster
from tests.support.workers import default_pool

FULL = os.environ.get("STASHHOG_CHAOS") == "full"
POOLS = ["prefork", "threads"] if FULL else [default_pool()]


@pytest.fixture(scope="module", params=POOLS)
def cluster(tmp_path_factory, request):
    with private_cluster(tmp_path_factory.mktemp("chaos"), pool=request.param) as built:
        yield built


@pytest.fixture(scope="module")
def chaos_app(cluster):
    with cluster_app(cluster) as app:
        yield app
