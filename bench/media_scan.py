"""The media library on real workers: files/s through the METADATA_GENERATE_WATCHER, and the
database writes of a rescan of the unchanged library (expected: 0).

    .venv/bin/python -m bench.media_scan [--files 1000] [--batch-size 20]
                                         [--concurrent-jobs 2] [--quick] [--json]

It encodes ``--files`` small clips (64x48, 10 frames of mpeg4, in-process with PyAV) into a
temporary folder, starts a daemons worker and a jobs worker (``-c --concurrent-jobs``),
creates a watcher over the folder and starts it, and times from the start until every file
is ``ready`` with all four outputs (probe, thumbnail, phash, checksum): files/s is files ÷
that time, so it includes the first index scan and every job's queueing. Then, in the bench
process, it rescans the unchanged library with the watcher's own scan function, counting
every INSERT/UPDATE/DELETE statement the engine executes and comparing each row's ``xmin``
(a row any UPDATE touched gets a new one) before and after. ``--quick`` is a 50-file smoke
run. With ``--json`` the last line of stdout is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from sqlalchemy import func, select, text

from bench.harness import BenchServices, machine_load, note, poll, table
from stashhog.extensions import db
from stashhog.media.library_files import DEFAULT_EXTENSIONS, normalise_root
from stashhog.media.models import MediaFile
from stashhog.media.scanner import scan_root
from stashhog.services.daemon_control import start_daemon, stop_daemon
from tests.media.clips import make_clip
from tests.media.writes import counting_writes
from tests.support.workers import start_jobs_worker


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=1000, help="clips in the library")
    parser.add_argument("--batch-size", type=int, default=20, help="the watcher's batch_size")
    parser.add_argument("--concurrent-jobs", type=int, default=2, help="max_concurrent_jobs")
    parser.add_argument("--timeout", type=float, default=900, help="seconds to wait for ready")
    parser.add_argument("--quick", action="store_true", help="a 50-file smoke run")
    parser.add_argument("--json", action="store_true", help="last line: the figures as JSON")
    args = parser.parse_args()
    if args.quick:
        args.files = min(args.files, 50)
    return args


def make_library(folder: Path, count: int) -> float:
    started = time.monotonic()
    for index in range(count):
        make_clip(folder / f"{index // 100:02}" / f"clip-{index:05}.mp4", seed=index + 1)
    return time.monotonic() - started


def ready_count() -> int:
    query = select(func.count()).where(MediaFile.status == "ready", MediaFile.outputs == 15)
    count = db.session.scalar(query)
    db.session.commit()
    return count


def generate(bench: BenchServices, folder: Path, args) -> dict:
    config = {
        "roots": [str(folder)],
        "batch_size": args.batch_size,
        "max_concurrent_jobs": args.concurrent_jobs,
        "scan_interval": 3600,
        "heartbeat_interval": 1,
    }
    daemon_id = bench.create_daemon("METADATA_GENERATE_WATCHER", config)
    with bench.app.app_context():
        started = time.monotonic()
        start_daemon(daemon_id, wait=10)
        done = poll(lambda: ready_count() >= args.files, args.timeout, interval=0.2)
        elapsed = time.monotonic() - started
        stop_daemon(daemon_id, wait=10)
        jobs = db.session.scalar(
            text("SELECT count(*) FROM jobs WHERE daemon_id = :d"), {"d": daemon_id}
        )
        ready = ready_count()
    if not done:
        raise SystemExit(f"only {ready} of {args.files} files ready after {args.timeout:.0f} s")
    return {"seconds": elapsed, "files_per_second": args.files / elapsed, "jobs": jobs}


def rescan(bench: BenchServices, folder: Path) -> dict:
    with bench.app.app_context():
        root = normalise_root(str(folder))
        before = dict(db.session.execute(text("SELECT id, xmin::text FROM media_files")).all())
        db.session.commit()
        with counting_writes(db.engine) as writes:
            started = time.monotonic()
            result = scan_root(root, frozenset(DEFAULT_EXTENSIONS))
            seconds = time.monotonic() - started
        after = dict(db.session.execute(text("SELECT id, xmin::text FROM media_files")).all())
        db.session.commit()
    changed = sum(1 for key, version in after.items() if before.get(key) != version)
    return {
        "rescan_seconds": seconds,
        "rescan_files": result.files,
        "rescan_changes": result.changes,
        "rescan_writes": len(writes),
        "rescan_rows_touched": changed + len(set(before) ^ set(after)),
    }


def main() -> None:
    args = parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-media-"))
    cache = Path(tempfile.mkdtemp(prefix="bench-thumbnails-"))
    try:
        encode = make_library(folder, args.files)
        note(f"encoded {args.files} clips in {encode:.1f} s under {folder}")
        with BenchServices() as bench:
            bench.app.config["THUMBNAIL_DIR"] = str(cache)
            bench.start_daemons_worker(1)
            jobs = start_jobs_worker({**bench.env, "STASHHOG_THUMBNAIL_DIR": str(cache)},
                                     bench.celery, args.concurrent_jobs)  # fmt: skip
            bench.workers.append(jobs)
            figures = {"files": args.files, "batch_size": args.batch_size,
                       "concurrent_jobs": args.concurrent_jobs}  # fmt: skip
            figures |= generate(bench, folder, args)
            figures |= rescan(bench, folder)
        figures["load"] = machine_load()
        report(figures, args.json)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(cache, ignore_errors=True)


def report(figures: dict, as_json: bool) -> None:
    rows = [
        ["files ready (all 4 outputs)", f"{figures['files']:,}"],
        ["seconds, start to all ready", f"{figures['seconds']:.1f}"],
        ["files/s", f"{figures['files_per_second']:.1f}"],
        ["METADATA_GENERATE jobs", figures["jobs"]],
        ["unchanged rescan: seconds", f"{figures['rescan_seconds']:.3f}"],
        ["unchanged rescan: write statements", figures["rescan_writes"]],
        ["unchanged rescan: rows touched (xmin)", figures["rescan_rows_touched"]],
    ]
    print(table(["measure", "value"], rows))
    print(f"# {figures['load']}")
    if as_json:
        print(
            json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in figures.items()})
        )


if __name__ == "__main__":
    main()
