"""``/api/health`` reports each part, and names the one that fails."""

import os
import signal
import subprocess
import time
import uuid

import pytest
import redis

from stashhog import create_app
from stashhog.services.health import INSPECTION_MISSES, WorkerInspection
from tests.support import services
from tests.support.workers import WorkerProcess

KEY = {"SECRET_KEY": services.TEST_SECRET_KEY}


def test_health_is_503_without_workers_and_names_the_queues(database_url):
    try:
        redis_url, _client = services.claim_redis_database()  # a broker no worker serves
    except Exception as exc:
        services.unavailable("Redis (TEST_REDIS_URL)", exc)
    try:
        app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "REDIS_URL": redis_url, **KEY})
        body = app.test_client().get("/api/health")
    finally:
        services.release_redis_database(redis_url)
    assert body.status_code == 503
    report = body.get_json()
    assert report["database"]["ok"] and report["redis"]["ok"]
    assert "queue:daemons" in report["failing"]


def test_health_is_200_with_both_queues_served(client, daemons_worker, jobs_worker):
    response = client.get("/api/health")
    assert response.status_code == 200, response.get_json()
    queues = response.get_json()["queues"]
    assert queues["daemons"]["ok"] and queues["jobs"]["ok"]


def test_a_worker_late_for_one_inspection_still_counts_and_two_misses_drop_it(
    worker_env, celery_app
):
    """A busy worker missing one broadcast's reply window does not make /api/health 503 (the
    panel showed a false "no worker consumes the daemons queue" banner); a worker that stays
    silent is dropped after INSPECTION_MISSES inspections in a row."""
    queue = f"health-{uuid.uuid4().hex[:6]}"
    worker = WorkerProcess(worker_env, queue, "-P", "solo")
    worker.wait_ready(celery_app)
    inspection = WorkerInspection(celery_app)
    try:
        assert inspection._inspect().queues.get(queue) == [worker.hostname()]
        os.kill(worker.pid, signal.SIGSTOP)  # replies to nothing while stopped
        for _ in range(INSPECTION_MISSES - 1):
            assert inspection._inspect().queues.get(queue) == [worker.hostname()]
        assert queue not in inspection._inspect().queues
        os.kill(worker.pid, signal.SIGCONT)
        assert inspection._inspect().queues.get(queue) == [worker.hostname()]
    finally:
        os.kill(worker.pid, signal.SIGCONT)
        worker.stop()


@pytest.fixture
def stopped_redis_url(tmp_path):
    """A real Redis server that we start and then stop, leaving its port closed."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    for _ in range(50):
        try:
            redis.Redis.from_url(url).ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    proc.terminate()
    proc.wait(5)
    return url


def test_health_reports_a_stopped_redis_as_503(database_url, stopped_redis_url):
    app = create_app(
        {"SQLALCHEMY_DATABASE_URI": database_url, "REDIS_URL": stopped_redis_url, **KEY}
    )
    response = app.test_client().get("/api/health")
    assert response.status_code == 503
    report = response.get_json()
    assert "redis" in report["failing"] and report["database"]["ok"]


def test_liveness_answers_without_database_or_broker(stopped_redis_url):
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": "postgresql://postgres@127.0.0.1:1/none",
            "REDIS_URL": stopped_redis_url,
            **KEY,
        }
    )
    client = app.test_client()
    assert client.get("/api/health").status_code == 503
    response = client.get("/api/health/live")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}


def test_a_start_the_broker_refuses_is_undone(database_url, stopped_redis_url):
    """503 from the service, and the row is as it was: not left STARTING."""
    from sqlalchemy import select

    from stashhog.errors import Unavailable
    from stashhog.extensions import db
    from stashhog.models import Daemon
    from stashhog.services.daemon_control import start_daemon

    app = create_app(
        {"SQLALCHEMY_DATABASE_URI": database_url, "REDIS_URL": stopped_redis_url, **KEY}
    )
    with app.app_context():
        seed = db.session.scalars(select(Daemon).where(Daemon.name == "Test Daemon")).one()
        before = (seed.status, seed.desired_state)
        with pytest.raises(Unavailable):
            start_daemon(seed.id)
        db.session.expire_all()
        after = db.session.get(Daemon, seed.id)
        assert (after.status, after.desired_state) == before
        db.session.remove()
