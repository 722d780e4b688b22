"""Database connections of a daemons worker process: a bounded pool, and a clear error when
none can be had (``stashhog.database.DatabaseBusy``) after retries with backoff, never a hang.
Against the real PostgreSQL: a pool held full, and a role at its CONNECTION LIMIT."""

from __future__ import annotations

import contextlib
import subprocess
import threading
import time
import uuid

import psutil
import psycopg2
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from stashhog.database import DB_BUSY_BUDGET, DatabaseBusy, is_exhaustion, retry_exhausted
from stashhog.extensions import db
from stashhog.models import Daemon
from stashhog.services import daemon_capacity
from stashhog.services.daemon_control import start_daemon, stop_daemon
from tests.support.isolation import dedicated_daemons_worker, own_broker_worker
from tests.support.wait import eventually
from tests.support.workers import ROOT


def select_one(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT 1")).scalar_one()


def test_a_full_pool_is_waited_for_then_raises_database_busy(database_url):
    engine = sa.create_engine(database_url, pool_size=1, max_overflow=0, pool_timeout=0.1)
    held = engine.connect()
    try:
        began = time.monotonic()
        with pytest.raises(DatabaseBusy) as caught:
            retry_exhausted(select_one, engine, budget=1.0)
        waited = time.monotonic() - began
        assert 0.5 <= waited <= 1.5  # retried up to the budget (1 s), then gave up
        assert caught.value.attempts >= 3
        assert str(caught.value).startswith("database connections exhausted: QueuePool limit")
        assert is_exhaustion(caught.value.__cause__)
    finally:
        held.close()
    # A connection freed during the retries is taken: the caller just waited.
    held = engine.connect()
    threading.Timer(0.3, held.close).start()
    assert retry_exhausted(select_one, engine, budget=3.0) == 1
    engine.dispose()


def role_with_limit(database_url, limit: int):
    """A role allowed ``limit`` connections (PostgreSQL's own refusal past it: "too many
    connections for role"), dropped after the block."""
    url = make_url(database_url)
    name = f"limited_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(host=url.host, port=url.port or 5432, user=url.username,
                             dbname=url.database)  # fmt: skip
    admin.autocommit = True
    admin.cursor().execute(f"CREATE ROLE {name} LOGIN CONNECTION LIMIT {limit}")
    try:
        yield url.set(username=name, password=None)
    finally:
        admin.cursor().execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (name,)
        )
        admin.cursor().execute(f"DROP ROLE {name}")
        admin.close()


@pytest.fixture
def limited_role(database_url):
    yield from role_with_limit(database_url, 1)


def test_a_refused_connection_is_retried_with_backoff_then_database_busy(limited_role):
    engine = sa.create_engine(limited_role, poolclass=sa.pool.NullPool)
    held = engine.connect()
    try:
        with pytest.raises(DatabaseBusy) as caught:
            retry_exhausted(select_one, engine, budget=0.5)
        assert "too many connections for role" in str(caught.value)
        assert caught.value.attempts >= 2
    finally:
        held.close()
    assert retry_exhausted(select_one, engine, budget=0.5) == 1
    # Any other database error is the caller's at once, not retried.
    with pytest.raises(sa.exc.ProgrammingError):
        retry_exhausted(lambda: engine.connect().execute(sa.text("SELECT nope")), budget=5)
    engine.dispose()


def test_the_procfile_daemons_line_follows_daemon_pool():
    """``make run`` and the container entry: DAEMON_POOL picks the pool, and the concurrency
    default follows it (compose passes an empty DAEMON_CONCURRENCY when it is unset)."""
    from stashhog.config import daemons_worker_env
    from stashhog.launcher import procfile_commands

    line = procfile_commands()["daemons"]
    for given, expected in (({}, "-P prefork -c 4"),
                            ({"DAEMON_POOL": "threads"}, "-P threads -c 200"),
                            ({"DAEMON_POOL": "threads", "DAEMON_CONCURRENCY": ""},
                             "-P threads -c 200"),
                            ({"DAEMON_POOL": "threads", "DAEMON_CONCURRENCY": "900"},
                             "-P threads -c 900")):  # fmt: skip
        env = daemons_worker_env(given)
        shown = subprocess.run(["sh", "-c", f"echo {line}"], env=env, cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout  # fmt: skip
        assert expected in shown, shown


def test_a_start_without_any_connection_is_recorded_for_the_supervisor_not_left_hanging(
    app, worker_env, database_url
):
    """A threads worker whose role PostgreSQL refuses every connection: the start's runtime
    retries for DB_BUSY_BUDGET, then records why (for the supervisor's ERROR: H3's part)."""
    roles = role_with_limit(database_url, 0)
    refused = next(roles).render_as_string(hide_password=False)
    try:
        with own_broker_worker(app, worker_env, database_url, label="busy", concurrency=4,
                               pool="threads", DATABASE_URL=refused) as (_own, worker):  # fmt: skip
            daemon = Daemon(name=f"busy-{uuid.uuid4().hex[:6]}", type="TEST_DAEMON",
                            configuration={"log_interval": 3600})  # fmt: skip
            db.session.add(daemon)
            db.session.commit()
            row = start_daemon(daemon.id)["daemon"]
            began = time.monotonic()

            def recorded():
                db.session.expire_all()
                return daemon_capacity.start_failures([db.session.get(Daemon, daemon.id)])

            failures = eventually(recorded, timeout=DB_BUSY_BUDGET + 10, interval=0.2)
            waited = time.monotonic() - began
            reason = failures[str(daemon.id)]
            assert reason.startswith("not started: DatabaseBusy on worker ")
            assert "too many connections for role" in reason
            assert DB_BUSY_BUDGET - 2 <= waited <= DB_BUSY_BUDGET + 8, waited
            assert row["status"] == "STARTING"  # the supervisor ends it (ERROR), not us
            worker.kill()  # its runtime retries no more: no shutdown to wait for
            db.session.delete(db.session.get(Daemon, daemon.id))
            db.session.commit()
            db.engine.dispose()
    finally:
        roles.close()


def test_connection_slots_bound_a_prefork_worker_across_its_children_and_survive_kill_9():
    """The slots a prefork worker's children share (made before the fork): a full set
    refuses, and a child killed while holding some gives them back."""
    import multiprocessing

    from stashhog.database import ConnectionSlots

    slots = ConnectionSlots(3)
    fork = multiprocessing.get_context("fork")
    held = fork.Queue()

    def child() -> None:
        held.put([slots.acquire(1), slots.acquire(1)])
        time.sleep(30)

    proc = fork.Process(target=child)
    proc.start()
    try:
        assert len(set(held.get(timeout=10))) == 2
        mine = slots.acquire(1)
        with pytest.raises(sa.exc.TimeoutError, match="all 3 connection slots"):
            slots.acquire(0.2)
        assert is_exhaustion(sa.exc.TimeoutError("QueuePool limit"))
    finally:
        proc.kill()
        proc.join(5)
    assert len({slots.acquire(1), slots.acquire(1), mine}) == 3  # the dead child's are free


def worker_connections(worker, database_url) -> int:
    """pg_stat_activity rows of a worker's processes (main and pool children), by port."""
    target = make_url(database_url)
    ports = set()
    for proc in [psutil.Process(worker.pid), *worker.children()]:
        with contextlib.suppress(psutil.NoSuchProcess):
            ports |= {c.laddr.port for c in proc.net_connections("tcp")
                      if c.raddr and c.raddr.port == (target.port or 5432)}  # fmt: skip
    admin = psycopg2.connect(host=target.host, port=target.port or 5432, user=target.username,
                             dbname=target.database)  # fmt: skip
    try:
        cursor = admin.cursor()
        cursor.execute("SELECT client_port FROM pg_stat_activity WHERE datname = %s",
                       (target.database,))  # fmt: skip
        return sum(1 for (port,) in cursor.fetchall() if port in ports)
    finally:
        admin.close()


def test_running_prefork_daemons_pin_no_idle_connection(
    make_daemon, worker_env, celery_app, database_url
):
    """Four quiet daemons on a -c 4 prefork worker: a child holds a connection only during a
    call (before: one pinned per child, at least four here)."""
    quiet = {"log_interval": 3600, "heartbeat_interval": 1, "job_interval": 3600}
    with dedicated_daemons_worker(worker_env, celery_app, concurrency=4) as worker:
        daemons = [make_daemon(configuration=quiet) for _ in range(4)]
        for daemon in daemons:
            assert start_daemon(daemon.id, wait=10)["daemon"]["status"] == "RUNNING"
        time.sleep(1.0)
        samples = []
        for _ in range(20):
            samples.append(worker_connections(worker, database_url))
            time.sleep(0.1)
        for daemon in daemons:
            stop_daemon(daemon.id, wait=5)
    assert max(samples) <= 4 and sum(samples) / len(samples) < 1, samples


def test_a_start_that_lacks_a_resource_is_told_apart_from_a_bug():
    """What ``run_daemon`` records for the supervisor's ERROR (a start that could not get a
    connection, memory, a descriptor or a thread) and what it re-raises as a failure."""
    import errno

    from workers.daemon_tasks import lacks_resource

    wanting = [MemoryError(), OSError(errno.EAGAIN, "Resource temporarily unavailable"),
               OSError(errno.EMFILE, "Too many open files"),
               RuntimeError("can't start new thread"),
               DatabaseBusy(OSError("too many clients"), 3, 10.0)]  # fmt: skip
    assert all(lacks_resource(exc) for exc in wanting)
    bugs = [RuntimeError("boom"), OSError(errno.ENOENT, "No such file"), ValueError("x")]
    assert not any(lacks_resource(exc) for exc in bugs)
