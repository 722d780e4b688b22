"""A private redis-server and a private PostgreSQL cluster inside the "services" namespace,
listening only on that namespace's veth addresses. Stopped by pid; the data dir is removed."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg2
import redis

from tests.hosts.hosts import HostsUnavailable, in_namespace, run

REDIS_PORT = 6390
PG_PORT = 5440


def pg_bin(tool: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{tool}"))
    if not found:
        raise HostsUnavailable(f"PostgreSQL's {tool} is not installed")
    return found[-1]


class PrivateRedis:
    def __init__(self, namespace: str, addresses: list[str], log: Path) -> None:
        self.namespace, self.addresses, self.log_path = namespace, addresses, log
        self.proc: subprocess.Popen | None = None

    def url(self, address: str) -> str:
        return f"redis://{address}:{REDIS_PORT}/0"

    def start(self, reach: str) -> None:
        command = ["redis-server", "--port", str(REDIS_PORT), "--bind", *self.addresses,
                   "--save", "", "--appendonly", "no", "--protected-mode", "no"]  # fmt: skip
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                in_namespace(self.namespace, command),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        client = redis.Redis.from_url(self.url(reach), socket_connect_timeout=0.3)
        for _ in range(100):
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError(f"private redis-server did not start; see {self.log_path}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


class PrivatePostgres:
    """initdb (as the postgres user: initdb refuses root) into a temp dir it owns; trust
    authentication for the test subnet only."""

    def __init__(self, namespace: str, addresses: list[str], subnets: list[str]) -> None:
        self.namespace, self.addresses, self.subnets = namespace, addresses, subnets
        self.dir = Path(tempfile.mkdtemp(prefix="stashhog-hosts-pg-"))
        self.data = self.dir / "data"
        self.started = False

    def url(self, address: str, database: str = "stashhog") -> str:
        return f"postgresql+psycopg2://postgres@{address}:{PG_PORT}/{database}"

    def _as_postgres(self, *command: str, netns: bool = False) -> None:
        full = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(in_namespace(self.namespace, full) if netns else full,
                                capture_output=True, text=True, timeout=60)  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"{command[0]} failed: {result.stderr.strip()[-2000:]}")

    def start(self, reach: str) -> None:
        shutil.chown(self.dir, "postgres", "postgres")
        os.chmod(self.dir, 0o700)
        self._as_postgres(pg_bin("initdb"), "-D", str(self.data), "-U", "postgres",
                          "--auth=trust", "-E", "UTF8", "--no-sync")  # fmt: skip
        with open(self.data / "pg_hba.conf", "w") as hba:
            hba.write("local all all trust\nhost all all 127.0.0.1/32 trust\n")  # the proxy
            hba.writelines(f"host all all {subnet} trust\n" for subnet in self.subnets)
        options = (f"-c listen_addresses={','.join(self.addresses)} -p {PG_PORT} "
                   f"-k {self.dir} -c fsync=off -c max_connections=200")  # fmt: skip
        log = str(self.dir / "server.log")
        self._as_postgres(pg_bin("pg_ctl"), "-D", str(self.data), "-o", options, "-l", log,
                          "-w", "start", netns=True)  # fmt: skip
        self.started = True
        conn = psycopg2.connect(host=reach, port=PG_PORT, user="postgres", dbname="postgres",
                                connect_timeout=5)  # fmt: skip
        conn.autocommit = True
        conn.cursor().execute("CREATE DATABASE stashhog")
        conn.close()

    def pid(self) -> int | None:
        pidfile = self.data / "postmaster.pid"
        return int(pidfile.read_text().split()[0]) if pidfile.exists() else None

    def stop(self) -> None:
        if self.started:
            try:
                self._as_postgres(pg_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate",
                                  "-w", "stop")  # fmt: skip
            except RuntimeError:
                if (pid := self.pid()) is not None:
                    run("kill", "-9", str(pid), check=False)
            self.started = False
        shutil.rmtree(self.dir, ignore_errors=True)
