"""The program ``bench.supervisord`` runs under supervisord: what a quiet Test Daemon does, as a
plain process. It writes a first heartbeat line as soon as it runs (the Test Daemon's runtime
writes RUNNING and its first heartbeat in one UPDATE), another every ``interval`` seconds, and
on SIGTERM a last line (the Test Daemon's on_stop() logs "Test daemon stopping") before it
exits 0. Each line carries its pid and its own wall-clock stamp, so the bench can tell a
start's lines from the previous one's and split the latency.

    python -I -S bench/supervisord_program.py <interval>

Standard library only, run without site-packages: the cheapest heartbeating Python process,
so supervisord's side pays only the fork, exec and interpreter start a program needs.
"""

import os
import signal
import sys
import time


class Stop(Exception):
    pass


def stop(_signum, _frame) -> None:
    raise Stop


def line(what: str) -> None:
    print(f"{what} pid {os.getpid()} at {time.time():.6f}", flush=True)


def main() -> None:
    interval = float(sys.argv[1])
    signal.signal(signal.SIGTERM, stop)
    try:
        while True:
            line("heartbeat")
            time.sleep(interval)
    except Stop:
        line("stopping")


if __name__ == "__main__":
    main()
