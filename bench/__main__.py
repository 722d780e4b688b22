"""The side-by-side suite: every benchmark, one after the other, in one process tree.

    .venv/bin/python -m bench [--quick] [--only KEY,...] [--parallel N] [--results DIR] [--json]

Each script of ``bench/suite.py`` runs as a subprocess with ``--json`` (its stdout kept for the
results file, its stderr in ``tests/artifacts/bench-<key>.log``); its last stdout line is its
figures. Then one table: each of the issue's goals with the measured figure, the peers measured
in the same run (supervisord, COPY alone, the per-line pattern) and the ratios, and met / not
met. A bench that failed (exit status, timeout, no JSON line, a headline name missing) is a
"failed" row and makes the exit status 1; a goal not met does not. The table, the machine's
description and every bench's own tables go to ``bench/results/<UTC date-time>-<hostname>.md``,
the raw figures to the ``.json`` beside it. ``make bench`` runs it (about 10 minutes);
``--quick`` runs every script at its smallest, two at a time (about a minute and a half;
``make test`` runs it through ``tests/test_bench_quick.py``), where the sizes are below the
goals': the status reads "quick".
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil

from bench import report, suite
from bench.figures import note, table
from tests.support.workers import ROOT

ARTIFACTS = ROOT / "tests" / "artifacts"


def run_one(bench: suite.Bench, quick: bool) -> tuple[dict, str]:
    """(figures or ``{"failed": why}``, the script's stdout without its JSON line)."""
    command = [sys.executable, "-m", f"bench.{bench.module}", *bench.arguments(quick), "--json"]
    log_path = ARTIFACTS / f"bench-{bench.key}.log"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    note(f"{bench.key}: {' '.join(command[1:])} (stderr: {log_path})")
    timeout = bench.quick_timeout if quick else bench.timeout
    began = time.monotonic()
    # stdout to a file, not a pipe: a process the script leaves behind would hold a pipe open.
    with tempfile.TemporaryFile("w+") as out, open(log_path, "wb") as log:
        proc = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=log,
                                start_new_session=True)  # fmt: skip
        timed_out = False
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _end(proc)
        leaked = _end_leftovers(proc.pid)
        out.seek(0)
        stdout = out.read()
    seconds = round(time.monotonic() - began, 1)
    lines = stdout.rstrip().splitlines()
    if timed_out:
        return {"failed": f"timed out after {timeout:g} s", "ran_s": seconds}, stdout
    if proc.returncode != 0:
        return {"failed": f"exit status {proc.returncode}", "ran_s": seconds}, stdout
    try:
        figures = json.loads(lines[-1])
    except (IndexError, ValueError):
        return {"failed": "no JSON object on its last line", "ran_s": seconds}, stdout
    missing = [name for name in bench.headline if name not in figures]
    if missing:
        figures["failed"] = f"headline names missing: {', '.join(missing)}"
    if leaked:
        figures["leaked_processes"] = leaked
    figures["ran_s"] = seconds
    return figures, "\n".join(lines[:-1])


def _end(proc: subprocess.Popen) -> None:
    """SIGTERM (the benches clean up on it), then SIGKILL of that pid if it lingers."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _end_leftovers(pgid: int) -> list[str]:
    """Processes of the script's own session still alive after it ended (it started them and
    left them behind): each ended by pid, and named in the figures."""
    leftovers = [
        process
        for process in psutil.process_iter(["pid", "cmdline", "status"])
        if process.info["status"] != psutil.STATUS_ZOMBIE and _pgid(process.pid) == pgid
    ]
    for process in leftovers:
        note(f"ending pid {process.pid}, left behind: {_command(process)}")
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass
    return [_command(process) for process in leftovers]


def _command(process: psutil.Process) -> str:
    return " ".join(process.info["cmdline"] or [])[:120]


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def rows_for(results: dict[str, dict], quick: bool) -> list[list[str]]:
    rows = []
    for key, figures in results.items():
        if "failed" in figures:
            rows.append([key, "", "", figures["failed"], "FAILED"])
            continue
        for row in suite.ROWS[key](figures):
            if quick and row[-1]:
                row[-1] = "quick"
            rows.append(row)
    return rows


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="every bench at its smallest")
    parser.add_argument("--only", help="comma-separated keys (default: all): " +
                        ", ".join(b.key for b in suite.BENCHES))  # fmt: skip
    parser.add_argument("--results", type=Path, default=report.RESULTS, help="folder")
    parser.add_argument(
        "--parallel",
        type=int,
        help="benches at once (default 1; --quick: 2, its figures are not for comparing)",
    )
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    args = parser.parse_args()
    args.parallel = args.parallel or (2 if args.quick else 1)
    keys = {b.key for b in suite.BENCHES}
    args.only = args.only.split(",") if args.only else sorted(keys)
    if unknown := set(args.only) - keys:
        parser.error(f"unknown: {', '.join(sorted(unknown))}")
    return args


def main() -> int:
    args = parse_args()
    load_before = [round(value, 2) for value in os.getloadavg()]
    description = report.machine()
    began = time.monotonic()
    chosen = [bench for bench in suite.BENCHES if bench.key in args.only]

    def one(bench: suite.Bench) -> tuple[dict, str]:
        figures, text = run_one(bench, args.quick)
        note(f"{bench.key}: {figures.get('failed', 'done')} ({figures.get('ran_s', '?')} s)")
        return figures, text

    # Each bench has its own database, Redis db and ports, so a smoke run can overlap them.
    with ThreadPoolExecutor(args.parallel) as pool:
        done = list(pool.map(one, chosen))
    results = {bench.key: figures for bench, (figures, _text) in zip(chosen, done, strict=True)}
    outputs = {bench.key: text for bench, (_figures, text) in zip(chosen, done, strict=True)}
    load_after = [round(value, 2) for value in os.getloadavg()]
    description |= {"load_average_before": load_before, "load_average_after": load_after,
                    "suite_seconds": round(time.monotonic() - began)}  # fmt: skip
    rows = rows_for(results, args.quick)
    title = "bench" + (" --quick" if args.quick else "") + f" on {description['hostname']}"
    print(table(suite.HEADERS, rows))
    print(f"load average {load_before} before, {load_after} after; "
          f"{description['suite_seconds']} s")  # fmt: skip
    text = report.markdown(title, description, rows, suite.HEADERS, outputs)
    raw = {"machine": description, "quick": args.quick, "results": results}
    path = report.write(args.results, args.quick, text, raw)
    print(f"results: {path}")
    failed = [key for key, figures in results.items() if "failed" in figures]
    if args.json:
        print(json.dumps({"bench": "suite", "failed": failed, **raw}), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
