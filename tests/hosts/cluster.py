"""A StashHog cluster across test hosts: a "services" namespace (private Redis and
PostgreSQL), three worker hosts (a daemons worker each; a supervisor worker on w1 and on w2,
as production would run one per host) and a "ctl" host running beat. The test process
reaches the services through a veth from the root namespace.

Each worker host has two links into the services namespace, one for Redis and one for
PostgreSQL, so a fault can cut one service or both. Hosts reach the services through the
slow-link proxy (tests/hosts/proxy.py: this kernel has no netem), which adds no delay until
a test shapes a host."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from tests.hosts.hosts import ROOT_SUBNET, SUBNET, Link, Network, free_root_subnet, in_namespace
from tests.hosts.services import PG_PORT, REDIS_PORT, PrivatePostgres, PrivateRedis
from tests.support import services
from tests.support.workers import CELERY, ROOT, WorkerProcess

HOSTS = ("w1", "w2", "w3")
SUPERVISOR_HOSTS = ("w1", "w2")
# Wall-clock skew per host, seconds (tests/hosts/skew/sitecustomize.py): every fault runs
# with one supervisor host and one worker host far ahead, another worker host far behind.
CLOCK_SKEW = {"w1": 0.0, "w2": 90.0, "w3": -90.0, "ctl": 0.0}
SKEW_PATH = ROOT / "tests" / "hosts" / "skew"
ARTIFACTS = ROOT / "tests" / "artifacts" / "hosts"


class HostWorker(WorkerProcess):
    """A ``celery worker`` run inside a host's namespace (``ip netns exec`` execs it, so
    the pid is the worker's own)."""

    def __init__(self, host: Host, queues: str, *extra: str) -> None:
        self.host = host
        self.name = f"{queues}-{host.role}-{uuid.uuid4().hex[:4]}@%h"
        self.log_path = ARTIFACTS / f"{self.name.split('@')[0]}.log"
        command = [*CELERY, "worker", "-Q", queues, "-n", self.name, "--loglevel", "INFO", *extra]
        self.log = open(self.log_path, "wb")  # noqa: SIM115  (closed in stop()/kill())
        self.proc = subprocess.Popen(in_namespace(host.namespace, command), cwd=ROOT, env=host.env,
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)  # fmt: skip


class Host:
    def __init__(self, role: str, namespace: str, redis_link: Link, pg_link: Link, env: dict,
                 controls: Path):  # fmt: skip
        self.role, self.namespace, self.controls = role, namespace, controls
        self.redis_link, self.pg_link = redis_link, pg_link
        self.env = env
        self.workers: list[HostWorker] = []

    def cut(self, *what: str) -> None:
        """Partition this host from "redis", "pg" or both."""
        for name in what:
            (self.redis_link if name == "redis" else self.pg_link).down()

    def heal(self) -> None:
        for made in (self.redis_link, self.pg_link):
            made.up()
        (self.controls / f"{self.role}.json").unlink(missing_ok=True)

    def shape(self, delay: float, loss: float = 0.0) -> None:
        """Slow both of this host's links: ``delay`` seconds each way, ``loss`` the share
        of chunks that also wait a retransmission (see tests/hosts/proxy.py)."""
        path = self.controls / f"{self.role}.json"
        path.write_text(json.dumps({"delay": delay, "loss": loss}))
        time.sleep(0.2)  # the proxy reads its controls every 100 ms


class HostCluster:
    def __init__(self, daemon_modules: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.net = Network()
        self.tmp = Path(tempfile.mkdtemp(prefix="stashhog-hosts-"))
        self.hosts: dict[str, Host] = {}
        self.beat: subprocess.Popen | None = None
        self.daemon_modules = daemon_modules
        self.prefix = f"hosts-{uuid.uuid4().hex[:6]}"
        self.redis: PrivateRedis | None = None
        self.pg: PrivatePostgres | None = None
        self.proxy: subprocess.Popen | None = None

    def build(self) -> None:
        svc = self.net.namespace("svc")
        root = self.net.link("root", None, svc, free_root_subnet())  # the test's way in
        self.reach = root.b_ip
        redis_links, pg_links = {}, {}
        namespaces = {}
        for role in (*HOSTS, "ctl"):
            namespaces[role] = self.net.namespace(role)
            redis_links[role] = self.net.link(f"{role}-redis", svc, namespaces[role])
            pg_links[role] = self.net.link(f"{role}-pg", svc, namespaces[role])
        self.redis = PrivateRedis(svc, [root.b_ip, "127.0.0.1"], ARTIFACTS / "redis.log")
        self.redis.start(self.reach)
        self.pg = PrivatePostgres(
            svc, [root.b_ip, "127.0.0.1"], [f"{SUBNET}.0.0/16", f"{ROOT_SUBNET}.0.0/16"]
        )
        self.pg.start(self.reach)
        specs = [f"{role}:{made.a_ip}:{port}=127.0.0.1:{port}"
                 for links, port in ((redis_links, REDIS_PORT), (pg_links, PG_PORT))
                 for role, made in links.items()]  # fmt: skip
        self.controls = self.tmp / "shapes"
        self.controls.mkdir()
        command = [sys.executable, "-m", "tests.hosts.proxy", str(self.controls), *specs]
        with open(ARTIFACTS / "proxy.log", "wb") as log:
            self.proxy = subprocess.Popen(
                in_namespace(svc, command),
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        time.sleep(1.0)
        assert self.proxy.poll() is None, "the slow-link proxy did not start"
        for role, namespace in namespaces.items():
            env = self.base_env(
                redis_url=self.redis.url(redis_links[role].a_ip),
                database_url=self.pg.url(pg_links[role].a_ip),
            )
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SKEW_PATH),
                                                              env.get("PYTHONPATH")]))  # fmt: skip
            env["STASHHOG_TEST_CLOCK_SKEW"] = str(CLOCK_SKEW[role])
            self.hosts[role] = Host(role, namespace, redis_links[role], pg_links[role], env,
                                    self.controls)  # fmt: skip

    def base_env(self, redis_url: str, database_url: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            DATABASE_URL=database_url,
            REDIS_URL=redis_url,
            SECRET_KEY=services.TEST_SECRET_KEY,
            STASHHOG_REDIS_PREFIX=self.prefix,
            STASHHOG_STOP_TIMEOUT="3",
            STASHHOG_DAEMON_MODULES=self.daemon_modules,
            PYTHONUNBUFFERED="1",
        )
        return env

    def config(self) -> dict:
        return {
            "SQLALCHEMY_DATABASE_URI": self.pg.url(self.reach),
            "REDIS_URL": self.redis.url(self.reach),
            "SECRET_KEY": services.TEST_SECRET_KEY,
            "REDIS_PREFIX": self.prefix,
            "STOP_TIMEOUT": 3.0,
            "DAEMON_MODULES": self.daemon_modules,
        }

    # -- processes -------------------------------------------------------------------------
    def start_processes(self, celery_app) -> None:
        started = []
        for role in SUPERVISOR_HOSTS:
            started.append(self.add_worker(role, "supervisor", "-P", "solo"))
        for role in HOSTS:
            started.append(self.add_daemons_worker(role, wait=False))
        for worker in started:
            worker.wait_ready(celery_app, timeout=60)
        ctl = self.hosts["ctl"]
        log = open(ARTIFACTS / "beat.log", "wb")  # noqa: SIM115
        command = [sys.executable, "-m", "celery", "-A", "app.celery", "beat",
                   "-s", str(self.tmp / "beat-schedule"), "--loglevel", "INFO"]  # fmt: skip
        self.beat = subprocess.Popen(in_namespace(ctl.namespace, command), cwd=ROOT, env=ctl.env,
                                     stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)  # fmt: skip

    def add_worker(self, role: str, queues: str, *extra: str) -> HostWorker:
        worker = HostWorker(self.hosts[role], queues, *extra)
        self.hosts[role].workers.append(worker)
        return worker

    def add_daemons_worker(self, role: str, celery_app=None, wait: bool = True) -> HostWorker:
        worker = self.add_worker(role, "daemons", "-P", "prefork", "-c", "2",
                                 "--disable-prefetch")  # fmt: skip
        if wait:
            worker.wait_ready(celery_app, timeout=60)
        return worker

    def daemons_worker(self, role: str) -> HostWorker:
        return next(w for w in self.hosts[role].workers if w.name.startswith("daemons-"))

    def host_of_worker(self, hostname: str | None) -> Host | None:
        for host in self.hosts.values():
            if any(w.hostname() == hostname for w in host.workers):
                return host
        return None

    def all_workers(self) -> list[HostWorker]:
        return [w for host in self.hosts.values() for w in host.workers]

    def shutdown(self) -> None:
        """Everything this cluster made goes, in any state: processes by pid, the
        services, the namespaces and links, the temp dirs."""
        if self.beat and self.beat.poll() is None:
            self.beat.send_signal(signal.SIGTERM)
            try:
                self.beat.wait(10)
            except subprocess.TimeoutExpired:
                self.beat.kill()
        for worker in self.all_workers():
            if worker.proc.poll() is None:
                worker.kill()
            worker.log.close()
        if self.proxy is not None and self.proxy.poll() is None:
            self.proxy.kill()
            self.proxy.wait(5)
        for component in (self.redis, self.pg):
            if component is not None:
                component.stop()
        self.net.teardown()
        import shutil

        shutil.rmtree(self.tmp, ignore_errors=True)
