"""The embedded default: SQLite (WAL, busy timeout) with real concurrent writers — a daemon
worker, a jobs worker and this process — running a daemon and its jobs end to end."""

from __future__ import annotations

import os
import uuid

import pytest
from flask_migrate import upgrade
from sqlalchemy import select

from stashhog import create_app
from stashhog.extensions import db
from stashhog.models import Daemon, DaemonJobHistory, DaemonLog
from stashhog.services.daemon_control import start_daemon, stop_daemon
from tests.support import services
from tests.support.wait import eventually
from tests.support.workers import start_daemons_worker, start_jobs_worker


@pytest.fixture
def sqlite_cluster(tmp_path):
    try:
        redis_url, _client = services.claim_redis_database()  # queues of its own
    except Exception as exc:
        services.unavailable("Redis (TEST_REDIS_URL)", exc)
    database_url = f"sqlite:///{tmp_path / 'embedded.db'}"
    prefix = f"sqlite-{uuid.uuid4().hex[:6]}"
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "REDIS_URL": redis_url,
                      "REDIS_PREFIX": prefix, "TESTING": True,
                      "SECRET_KEY": services.TEST_SECRET_KEY})  # fmt: skip
    env = dict(os.environ, DATABASE_URL=database_url, REDIS_URL=redis_url,
               STASHHOG_REDIS_PREFIX=prefix, SECRET_KEY=services.TEST_SECRET_KEY)  # fmt: skip
    workers = []
    with app.app_context():
        upgrade(revision="head")
        celery = app.extensions["celery"]
        try:
            workers = [start_daemons_worker(env, celery, 2), start_jobs_worker(env, celery, 1)]
            yield app
        finally:
            for worker in workers:
                worker.stop()
            db.session.remove()
            db.engine.dispose()
            services.release_redis_database(redis_url)


def test_a_daemon_runs_its_jobs_on_the_embedded_sqlite_default(sqlite_cluster):
    daemon = db.session.scalars(select(Daemon).where(Daemon.name == "Test Daemon")).one()
    daemon.configuration = {
        "log_interval": 0.1,
        "job_interval": 0.5,
        "heartbeat_interval": 0.5,
        "job_metadata": {"steps": 2, "step_seconds": 0.1},
    }
    db.session.commit()
    daemon_id = daemon.id
    assert start_daemon(daemon_id, wait=5)["daemon"]["status"] == "RUNNING"

    def finished():
        db.session.expire_all()
        query = select(DaemonJobHistory.action).where(DaemonJobHistory.daemon_id == daemon_id)
        return "FINISHED" in db.session.scalars(query).all()

    eventually(finished, timeout=15)
    assert stop_daemon(daemon_id, wait=5)["daemon"]["status"] == "STOPPED"
    seqs = db.session.scalars(
        select(DaemonLog.seq).where(DaemonLog.daemon_id == daemon_id).order_by(DaemonLog.id)
    ).all()
    assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) > 10
