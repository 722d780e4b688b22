"""Samples of the daemon instance's own process (the prefork child it runs in). A threads
worker takes none: its process is every daemon's (workers/limits.py)."""

from __future__ import annotations

import psutil


class ProcessSampler:
    def __init__(self) -> None:
        self.process = psutil.Process()
        self.process.cpu_percent(None)  # the first reading only sets the baseline

    def sample(self) -> dict:
        """CPU % since the last sample, RSS in bytes, threads and open files."""
        proc = self.process
        with proc.oneshot():
            return {
                "cpu_percent": proc.cpu_percent(None),
                "rss": proc.memory_info().rss,
                "threads": proc.num_threads(),
                "open_files": _open_files(proc),
            }


def _open_files(proc: psutil.Process) -> int:
    try:
        return proc.num_fds()
    except (AttributeError, psutil.Error):  # num_fds is POSIX only
        return len(proc.open_files())
