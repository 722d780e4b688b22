"""Start and stop latency of one daemon on a real prefork ``daemons`` worker.

    .venv/bin/python -m bench.start_stop [--cycles 200] [--concurrency 2] [--api-cycles 20]
                                         [--immediate-cycles 40] [--supervisord-cycles N]
                                         [--quick] [--json]

Each cycle calls ``start_daemon`` (the service behind ``POST /api/daemons/<id>/start``) and
polls the ``daemons`` row on a plain psycopg2 connection every ``--poll`` seconds (1 ms) until
it is RUNNING with a ``last_heartbeat`` for the new generation (the runtime writes both in the
one UPDATE that claims the row). It then waits until commands on the daemon's control channel
reach it (its process's control subscriber holds its pattern subscription, ``CLIENT LIST``,
polled every 1 ms): the instance is fully up. Then it calls ``stop_daemon`` and polls until
the row is STOPPED, and checks that on_stop()'s line ("Test daemon stopping") is in
``daemon_logs``. Between cycles it waits for the lease to be released
and ``--gap`` seconds, so cycles never overlap.

``--api-cycles`` more cycles go through the real HTTP API (a werkzeug server in a thread, one
connection per request). ``--immediate-cycles`` more cycles stop as soon as RUNNING is visible,
without waiting for the control subscription: a stop that has not finished after
``--stop-timeout`` counts as hung; the bench then SIGKILLs that pool child by pid (what the
supervisor's escalation does) and waits for the lease to expire. Target: p99 <= 25 ms.

supervisord side by side (``bench/supervisord.py``): after each service cycle, one cycle of a
heartbeating program under supervisord 4.3 (``--supervisord-cycles``, as many as ``--cycles``
unless told; 0: none), so both sides are measured in the same run on the same machine; the
ratios (our p99 / supervisord's) come with the figures. ``--quick``: 20/5/5 cycles.

With ``--json`` the last line of stdout is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Callable

from werkzeug.serving import make_server

from bench import supervisord
from bench.cycles import Samples, report
from bench.harness import (
    BenchServices,
    add_json_option,
    bearer,
    machine_load,
    note,
    poll,
    print_json,
    summary_figures,
)
from stashhog.control import control_channel
from stashhog.events import get_redis
from stashhog.models import DaemonType
from stashhog.services import lease
from stashhog.services.daemon_control import start_daemon, stop_daemon

# The seed's TEST_DAEMON, quiet: its on_stop() logs "Test daemon stopping".
CONFIG = {"log_interval": 3600, "job_interval": 86400, "heartbeat_interval": 10}
ON_STOP_LINE = "Test daemon stopping"
ROW_SQL = (
    "SELECT status, generation, last_heartbeat, started_at, stopped_at, worker_pid "
    "FROM daemons WHERE id = %s"
)
ON_STOP_SQL = (
    "SELECT count(*) FILTER (WHERE message = %s), min(created_at) FILTER (WHERE message = %s), "
    "min(message) FILTER (WHERE message LIKE 'stopped (%%') "
    "FROM daemon_logs WHERE daemon_id = %s AND generation = %s"
)
START_TIMEOUT = 5.0
TARGET_P99_MS = 25.0


class Cycler:
    """Runs start/stop cycles with a start and a stop function (service or HTTP)."""

    def __init__(self, bench: BenchServices, daemon_id, args: argparse.Namespace) -> None:
        self.bench, self.daemon_id = bench, daemon_id
        self.interval, self.gap, self.stop_timeout = args.poll, args.gap, args.stop_timeout
        self.conn = bench.pg_connect()
        self.cursor = self.conn.cursor()
        with bench.app.app_context():
            self.redis, self.channel = get_redis(), control_channel(daemon_id)

    def row(self):
        self.cursor.execute(ROW_SQL, (str(self.daemon_id),))
        return self.cursor.fetchone()

    def wait_row(self, accept: Callable, samples: Samples, timeout: float):
        began, count = time.perf_counter(), [0]

        def probe():
            count[0] += 1
            row = self.row()
            return row if accept(row) else None

        row = poll(probe, timeout, self.interval)
        samples.polls += count[0]
        samples.poll_time += time.perf_counter() - began
        return row

    def subscribed(self, pid: int | None = None) -> bool:
        """Commands on the daemon's control channel reach it: its process's control
        subscriber (one per worker process, named ``stashhog-control:<host>:<pid>``) holds
        its pattern subscription, or a subscriber of the channel itself is there."""
        if self.redis.pubsub_numsub(self.channel)[0][1] > 0:
            return True
        return pid is not None and any(
            client.get("name", "").startswith("stashhog-control:")
            and client["name"].endswith(f":{pid}")
            and int(client.get("psub", 0)) > 0
            for client in self.redis.client_list(_type="pubsub")
        )

    def run(self, cycles: int, start: Callable, stop: Callable, samples: Samples, settle=True,
            after: Callable[[int], None] | None = None):  # fmt: skip
        """``cycles`` cycles; ``after(number)`` runs after each (supervisord's cycle)."""
        for number in range(cycles):
            self.cycle(number, start, stop, samples, settle)
            with self.bench.app.app_context():
                poll(lambda: lease.lease_holder(self.daemon_id) is None, 10.0, 0.001)
            if after:
                after(number)
            time.sleep(self.gap)

    def cycle(self, number: int, start: Callable, stop: Callable, samples: Samples, settle):
        wall, began = time.time(), time.perf_counter()
        generation = start(self.daemon_id)
        called = time.perf_counter()
        row = self.wait_row(
            lambda r: r[1] == generation and r[0] in ("RUNNING", "ERROR") and r[2],
            samples,
            START_TIMEOUT,
        )
        seen = time.perf_counter()
        if row is None or row[0] != "RUNNING":
            samples.anomalies.append(f"cycle {number}: start ended as {row and row[0]}")
            return
        samples.start_call.append((called - began) * 1000)
        samples.start_visible.append((seen - began) * 1000)
        samples.start_stamp.append((row[3].timestamp() - wall) * 1000)
        samples.pids[row[5]] += 1
        pid = row[5]
        if settle:
            poll(lambda: self.subscribed(pid), START_TIMEOUT, 0.001)
            samples.subscribed.append((time.perf_counter() - began) * 1000)
        self.stop_and_check(number, generation, pid, stop, samples)

    def stop_and_check(self, number, generation, pid, stop: Callable, samples: Samples):
        wall, began = time.time(), time.perf_counter()
        stop(self.daemon_id)
        called = time.perf_counter()
        row = self.wait_row(
            lambda r: r[1] == generation and r[0] in ("STOPPED", "ERROR"),
            samples,
            self.stop_timeout,
        )
        seen = time.perf_counter()
        if row is None:
            samples.hung += 1
            samples.anomalies.append(
                f"cycle {number}: still {self.row()[0]} {self.stop_timeout:g} s after stop, "
                f"control channel still subscribed: {self.subscribed(pid)}; "
                f"SIGKILL pool child {pid}"
            )
            self.kill_child(pid)
            return
        self.cursor.execute(
            ON_STOP_SQL, (ON_STOP_LINE, ON_STOP_LINE, str(self.daemon_id), generation)
        )
        count, on_stop_at, stopped_line = self.cursor.fetchone()
        samples.reasons[stopped_line] += 1
        if row[0] != "STOPPED" or count != 1:
            samples.anomalies.append(f"cycle {number}: {row[0]}, on_stop line missing")
            return
        samples.stop_call.append((called - began) * 1000)
        samples.stop_visible.append((seen - began) * 1000)
        samples.on_stop_stamp.append((on_stop_at.timestamp() - wall) * 1000)
        samples.stop_stamp.append((row[4].timestamp() - wall) * 1000)

    def kill_child(self, pid: int) -> None:
        """Only a pool child of our own worker: billiard starts a replacement."""
        ours = {child.pid for worker in self.bench.workers for child in worker.children()}
        if pid in ours:
            os.kill(pid, signal.SIGKILL)


def service_functions(app):
    def start(daemon_id) -> int:
        with app.app_context():
            return start_daemon(daemon_id)["daemon"]["generation"]

    def stop(daemon_id) -> None:
        with app.app_context():
            stop_daemon(daemon_id)

    return start, stop


def http_functions(port: int, token: str):
    def post(path: str) -> dict:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            conn.request("POST", path, headers=bearer(token))
            response = conn.getresponse()
            body = json.loads(response.read())
        finally:
            conn.close()
        if response.status != 200:
            raise RuntimeError(f"POST {path}: {response.status} {body}")
        return body

    def start(daemon_id) -> int:
        return post(f"/api/daemons/{daemon_id}/start")["daemon"]["generation"]

    def stop(daemon_id) -> None:
        post(f"/api/daemons/{daemon_id}/stop")

    return start, stop


def serve(app):
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=200)
    parser.add_argument("--api-cycles", type=int, default=20)
    parser.add_argument("--immediate-cycles", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5, help="cycles run first, not counted")
    parser.add_argument("--concurrency", type=int, default=2, help="worker -c")
    parser.add_argument("--poll", type=float, default=0.001, help="seconds between row reads")
    parser.add_argument("--gap", type=float, default=0.05, help="seconds between cycles")
    parser.add_argument("--stop-timeout", type=float, default=3.0, help="a stop is hung after")
    parser.add_argument(
        "--supervisord-cycles",
        type=int,
        help="supervisord cycles, one after each service cycle (default: --cycles; 0: none)",
    )
    parser.add_argument("--quick", action="store_true", help="20/5/5 cycles, 2 warm-up")
    add_json_option(parser)
    args = parser.parse_args()
    if args.quick:
        args.cycles, args.api_cycles, args.immediate_cycles, args.warmup = 20, 5, 5, 2
    if args.supervisord_cycles is None:
        args.supervisord_cycles = args.cycles
    return args


def main() -> None:
    args = parse_args()
    with BenchServices() as bench:
        note(machine_load())
        bench.start_daemons_worker(args.concurrency)
        daemon_id = bench.create_daemon(DaemonType.TEST_DAEMON, CONFIG)
        cycler = Cycler(bench, daemon_id, args)
        with contextlib.ExitStack() as stack:
            peer = None
            if args.supervisord_cycles:
                sup = stack.enter_context(supervisord.Supervisord(args.stop_timeout))
                peer = supervisord.SupervisordCycler(sup, args.poll, args.stop_timeout)
            runs, peer_samples = measure(bench, cycler, peer, args)
        cycler.conn.close()
        note(machine_load())
    if args.json:
        print_json("start_stop", summary(runs, peer_samples, args.supervisord_cycles))


def measure(bench: BenchServices, cycler: Cycler, peer, args):
    """The service, HTTP API and immediate-stop runs, each reported as it ends, and the
    supervisord cycles (``peer``) interleaved with the service run's."""
    service = service_functions(bench.app)
    warmup, peer_samples = Samples(), Samples()
    peer_cycles = [0]

    def peer_cycle(_number: int) -> None:
        if peer is not None and peer_cycles[0] < args.supervisord_cycles:
            peer_cycles[0] += 1
            peer.cycle(peer_cycles[0], peer_samples)

    cycler.run(args.warmup, *service, warmup, after=peer and (lambda n: peer.cycle(n, Samples())))
    note(
        f"warm-up: start {[round(v) for v in warmup.start_visible]} ms, stop "
        f"{[round(v) for v in warmup.stop_visible]} ms"
    )
    server = serve(bench.app)
    up = "stop once the instance is up"
    plans = [  # name, cycles, (start, stop), wait for the control subscription, title
        ("service", args.cycles, service, True,
         f"service calls, {args.cycles} cycles, prefork -c {args.concurrency} "
         f"--disable-prefetch, {up}"),
        ("api", args.api_cycles, http_functions(server.server_port, bench.token), True,
         f"HTTP API (werkzeug, POST .../start then .../stop), {args.api_cycles} cycles, {up}"),
        ("immediate", args.immediate_cycles, service, False,
         f"service calls, {args.immediate_cycles} cycles, stop as soon as RUNNING is visible"),
    ]  # fmt: skip
    runs = {}
    try:
        for name, cycles, (start, stop), settle, title in plans:
            if cycles or name == "service":
                runs[name] = (Samples(), cycles)
                after = peer_cycle if name == "service" else None
                cycler.run(cycles, start, stop, runs[name][0], settle, after)
                report(title, *runs[name])
                if after and peer is not None:
                    peer.run(args.supervisord_cycles - peer_cycles[0], peer_samples)
                    cycles = args.supervisord_cycles
                    report(supervisord.title(cycles), peer_samples, cycles, supervisord.LABELS)
    finally:
        server.shutdown()
    return runs, peer_samples if peer is not None else None


def summary(runs: dict[str, tuple[Samples, int]], peer: Samples | None, peer_cycles: int):
    """The ``--json`` object: the headline p99s of the service run, supervisord's and their
    ratios (ours / supervisord's: below 1 is faster), then every run."""
    service = runs["service"][0]
    figures = {
        "start_p99_ms": summary_figures(service.start_visible)["p99_ms"],
        "stop_p99_ms": summary_figures(service.stop_visible)["p99_ms"],
        "target_p99_ms": TARGET_P99_MS,
        "hung": sum(samples.hung for samples, _cycles in runs.values()),
    }
    if peer is not None:
        theirs = supervisord.figures(peer, peer_cycles)
        for what in ("start", "stop"):
            ours, their = figures[f"{what}_p99_ms"], theirs[f"{what}_p99_ms"]
            figures[f"supervisord_{what}_p99_ms"] = their
            figures[f"{what}_p99_ratio"] = round(ours / their, 2) if ours and their else None
        figures["supervisord"] = theirs
    runs_figures = {name: samples.figures(cycles) for name, (samples, cycles) in runs.items()}
    return figures | {"runs": runs_figures}


if __name__ == "__main__":
    main()
