"""supervisord side by side: start and stop latency of a heartbeating program under
supervisord 4.3 (the test extra installs it), driven through its XML-RPC interface.

    .venv/bin/python -m bench.supervisord [--cycles 200] [--warmup 5] [--json]

``bench.start_stop`` runs the same cycles, interleaved with its own (one supervisord cycle after
each service cycle, so both sides see the same machine), and prints the ratios; this script runs
supervisord alone. supervisord runs in the foreground from a temporary folder (its socket, its
configuration and the program's log there) with one program, ``bench/supervisord_program.py``:
a first heartbeat line as soon as it runs, one every 10 s (the quiet Test Daemon's interval), a
last "stopping" line on SIGTERM, each line with its pid and its own stamp.

A cycle calls ``supervisor.startProcess(name, False)`` on the unix socket, then polls every
``--poll`` seconds (1 ms), one ``system.multicall`` each (``getProcessInfo`` and the end of
the program's stdout log through ``readProcessStdoutLog``), until the process is RUNNING
(``startsecs=0``: as soon as it is spawned) and its log shows the first heartbeat of that pid.
Then ``supervisor.stopProcess(name, False)`` (SIGTERM) and polls until it is STOPPED (exited
and reaped) with its "stopping" line in the log. A stop not done within ``--stop-timeout``
counts as hung. With ``--json`` the last line of stdout is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import math
import signal
import subprocess
import sys
import tempfile
import time
import xmlrpc.client
from pathlib import Path

from supervisor.xmlrpc import SupervisorTransport

from bench.cycles import Samples, report
from bench.harness import add_json_option, kill_lingering, machine_load, note, poll, print_json
from tests.support.workers import ROOT

PROGRAM = Path(__file__).with_name("supervisord_program.py")
NAME = "heartbeat"
HEARTBEAT_INTERVAL = 10  # bench.start_stop's CONFIG
TAIL = 400  # bytes of the log read by each poll: the last few lines
# The measures this side has (a Samples field -> its label).
LABELS = {
    "start_call": "start: startProcess returned",
    "start_stamp": "start: first heartbeat's own stamp - call",
    "start_visible": "start: RUNNING+heartbeat visible (XML-RPC)",
    "stop_call": "stop: stopProcess returned",
    "on_stop_stamp": "stop: stopping line's own stamp - call",
    "stop_visible": "stop: STOPPED+stopping line visible (XML-RPC)",
}
CONFIG = """\
[unix_http_server]
file={dir}/supervisor.sock
chmod=0700

[supervisord]
logfile={dir}/supervisord.log
pidfile={dir}/supervisord.pid
childlogdir={dir}
nodaemon=true
loglevel=warn

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[program:{name}]
command={python} -I -S {program} {interval}
autostart=false
autorestart=false
startsecs=0
startretries=0
stopsignal=TERM
stopwaitsecs={stop_wait}
redirect_stderr=true
stdout_logfile={dir}/{name}.log
stdout_logfile_maxbytes=0
"""


class Supervisord:
    """``with Supervisord() as sup:`` a supervisord of our own, stopped by pid at the end."""

    def __init__(self, stop_timeout: float = 3.0) -> None:
        self.stop_timeout = stop_timeout

    def __enter__(self) -> Supervisord:
        self.tmp = tempfile.TemporaryDirectory(prefix="stashhog-supervisord-")
        folder = Path(self.tmp.name)
        config = folder / "supervisord.conf"
        config.write_text(
            CONFIG.format(dir=folder, name=NAME, python=sys.executable, program=PROGRAM,
                          interval=HEARTBEAT_INTERVAL, stop_wait=math.ceil(self.stop_timeout))
        )  # fmt: skip
        self.log_path = ROOT / "tests" / "artifacts" / "supervisord-bench.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "supervisor.supervisord", "-c", str(config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.socket = folder / "supervisor.sock"
        try:
            self._wait_ready()
        except BaseException:
            self.__exit__()
            raise
        note(f"supervisord pid {self.proc.pid}, version {self.rpc.supervisor.getVersion()}")
        return self

    def _wait_ready(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"supervisord exited; see {self.log_path}")
            # A transport keeps its connection: a new one for each try.
            self.rpc = xmlrpc.client.ServerProxy(
                "http://127.0.0.1", SupervisorTransport(serverurl=f"unix://{self.socket}")
            )
            try:
                if self.rpc.supervisor.getState()["statename"] == "RUNNING":
                    return
            except OSError:  # not listening yet
                pass
            time.sleep(0.05)
        raise TimeoutError(f"supervisord did not answer; see {self.log_path}")

    def __exit__(self, *_exc) -> None:
        """SIGTERM (supervisord stops its program first), then SIGKILL of what lingers."""
        pids = [self.proc.pid]
        try:
            self.rpc = xmlrpc.client.ServerProxy(
                "http://127.0.0.1", SupervisorTransport(serverurl=f"unix://{self.socket}")
            )
            pids.append(self.rpc.supervisor.getProcessInfo(NAME)["pid"] or 0)
        except (OSError, xmlrpc.client.Error):
            pass
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(self.stop_timeout + 10)
            except subprocess.TimeoutExpired:
                pass
        kill_lingering([pid for pid in pids if pid], "supervisord pid")
        self.proc.wait(5)
        self.tmp.cleanup()
        note(f"stopped supervisord pid {self.proc.pid}")


class SupervisordCycler:
    """Start/stop cycles of the program, observed through XML-RPC only."""

    def __init__(self, sup: Supervisord, interval: float = 0.001, stop_timeout: float = 3.0):
        self.rpc, self.interval, self.stop_timeout = sup.rpc, interval, stop_timeout
        self.calls = [
            {"methodName": "supervisor.getProcessInfo", "params": [NAME]},
            {"methodName": "supervisor.readProcessStdoutLog", "params": [NAME, -TAIL, 0]},
        ]

    def observe(self, samples: Samples) -> tuple[str, str]:
        """One round trip: the process's state name and the end of its log."""
        began = time.perf_counter()
        # supervisord's multicall answers each call's value itself (or a fault struct).
        info, tail = self.rpc.system.multicall(self.calls)
        if "faultCode" in info:
            raise RuntimeError(f"getProcessInfo: {info['faultString']}")
        samples.polls += 1
        samples.poll_time += time.perf_counter() - began
        return info["statename"], tail

    def run(self, cycles: int, samples: Samples) -> None:
        for number in range(cycles):
            self.cycle(number, samples)

    def cycle(self, number: int, samples: Samples) -> None:
        wall, began = time.time(), time.perf_counter()
        self.rpc.supervisor.startProcess(NAME, False)
        called = time.perf_counter()
        pid = self.rpc.supervisor.getProcessInfo(NAME)["pid"]
        stamp = poll(lambda: self._line(samples, "RUNNING", f"heartbeat pid {pid} "), 5.0,
                     self.interval)  # fmt: skip
        if stamp is None:
            samples.anomalies.append(f"cycle {number}: no RUNNING heartbeat within 5 s")
            self.rpc.supervisor.stopProcess(NAME, True)
            return
        samples.start_call.append((called - began) * 1000)
        samples.start_visible.append((time.perf_counter() - began) * 1000)
        samples.start_stamp.append((stamp - wall) * 1000)
        self.stop(number, pid, samples)

    def stop(self, number: int, pid: int, samples: Samples) -> None:
        wall, began = time.time(), time.perf_counter()
        self.rpc.supervisor.stopProcess(NAME, False)
        called = time.perf_counter()
        stamp = poll(lambda: self._line(samples, "STOPPED", f"stopping pid {pid} "),
                     self.stop_timeout, self.interval)  # fmt: skip
        if stamp is None:
            samples.hung += 1
            samples.anomalies.append(f"cycle {number}: not STOPPED {self.stop_timeout:g} s in")
            poll(lambda: self.observe(samples)[0] != "STOPPING", 15.0, 0.05)
            return
        samples.stop_call.append((called - began) * 1000)
        samples.stop_visible.append((time.perf_counter() - began) * 1000)
        samples.on_stop_stamp.append((stamp - wall) * 1000)

    def _line(self, samples: Samples, state: str, prefix: str) -> float | None:
        """The stamp of the program's ``prefix`` line once the process is in ``state``."""
        statename, tail = self.observe(samples)
        if statename != state or prefix not in tail:
            return None
        return float(tail.rsplit(prefix, 1)[1].split()[1])


def figures(samples: Samples, cycles: int) -> dict:
    """The ``--json`` figures of a supervisord run (bench.start_stop nests them)."""
    return {
        "start_p99_ms": samples.figures(cycles, LABELS)["start_visible"]["p99_ms"],
        "stop_p99_ms": samples.figures(cycles, LABELS)["stop_visible"]["p99_ms"],
        **samples.figures(cycles, LABELS),
    }


def title(cycles: int) -> str:
    return (
        f"supervisord 4.3, {cycles} cycles: startProcess / stopProcess (no wait) on the unix "
        "socket, then one XML-RPC multicall every 1 ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=5, help="cycles run first, not counted")
    parser.add_argument("--poll", type=float, default=0.001, help="seconds between reads")
    parser.add_argument("--stop-timeout", type=float, default=3.0, help="a stop is hung after")
    add_json_option(parser)
    args = parser.parse_args()
    note(machine_load())
    with Supervisord(args.stop_timeout) as sup:
        cycler = SupervisordCycler(sup, args.poll, args.stop_timeout)
        cycler.run(args.warmup, Samples())
        samples = Samples()
        cycler.run(args.cycles, samples)
    report(title(args.cycles), samples, args.cycles, LABELS)
    note(machine_load())
    if args.json:
        print_json("supervisord", figures(samples, args.cycles))


if __name__ == "__main__":
    main()
