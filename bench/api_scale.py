"""The API, the daemons page and the supervisor pass at 1,000 daemons.

    .venv/bin/python -m bench.api_scale [--daemons 1000] [--rate 50] [--seconds 20]
        [--beats 100] [--events 200] [--event-seconds 5] [--passes 20] [--quick] [--json]

Seeds ``--daemons`` RUNNING daemons (rows, half of them with a memory limit and three
metric samples each, and a lease in Redis for every one: no worker runs), then:

- ``GET /api/daemons`` (every daemon) at ``--rate`` requests/s for ``--seconds`` against the
  Procfile's ``web`` process (gunicorn, gevent, one worker: ``BenchServices.start_web``),
  open loop: latency is from a request's scheduled time to its last byte, so a slow answer
  delays none of the later ones' schedule but counts in full. Meanwhile ``--beats``
  heartbeats/s are written through ``change_daemon`` (1,000 daemons at the default 10 s
  interval make 100/s), each a row write plus its ``daemon_update`` event, as a runtime does.
  Polled that often, the web process reuses a list for 0.25 s (``daemon_listing``);
  ``--fresh`` sends ``Cache-Control: no-cache``, so every request builds one.
- The supervisor pass (``supervisor.reconcile``, in this process) ``--passes`` times, and
  the resource-limit samples it reads, batched (one query) and one query per daemon.
- Chromium on ``/daemons``: the time from navigation until every card is in the DOM
  (``page_render_ms``), then ``--event-seconds`` of ``--events`` heartbeats/s (live events),
  during which the longest gap between two animation frames (``page_max_frame_gap_ms``) and
  the longest long task are recorded, and the cards the events changed are counted.

``--quick``: 200 daemons, 4 s of requests, 3 passes, 2 s of events (well under 30 s).
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import os
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from urllib.parse import urlsplit

from sqlalchemy import text

from bench import harness
from bench.figures import (
    add_json_option,
    machine_load,
    note,
    print_json,
    summary_figures,
    summary_row,
    table,
)
from stashhog.events import get_redis
from stashhog.extensions import db
from stashhog.services import daemon_limits, supervisor
from stashhog.services.daemon_queries import all_daemon_rows
from stashhog.services.daemon_state import change_daemon
from stashhog.services.lease import lease_key

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run"]
WORKER = "bench-api-scale@host"
SEED = """
INSERT INTO daemons (id, name, type, configuration, enabled, auto_start, status, desired_state,
    generation, restart_policy, max_restarts, restart_window, restart_count, log_lines_dropped,
    depends_on, max_memory_mb, worker, worker_pid, started_at, last_heartbeat, created_at,
    updated_at)
SELECT gen_random_uuid(), 'scale-' || lpad(i::text, 5, '0'), 'TEST_DAEMON',
    '{"log_interval": 5}'::jsonb, true, false, 'RUNNING', 'RUNNING', 1, 'on-failure', 5, 300,
    0, 0, '[]'::jsonb, CASE WHEN i % 2 = 0 THEN 4096 END, :worker, 1000 + i, now(), now(),
    now(), now()
FROM generate_series(1, :count) AS i
"""
SAMPLES = """
INSERT INTO daemon_metrics (daemon_id, resolution, generation, rss, cpu_percent, threads,
    open_files, created_at)
SELECT id, 0, 1, 30000000 + s, 1.5, 4, 8, now() FROM daemons, generate_series(1, 3) AS s
WHERE max_memory_mb IS NOT NULL
"""
# In the page: frames and long tasks while the events stream, and the cards they touched.
WATCH_JS = """(ms) => new Promise((done) => {
  const grid = document.querySelector('#daemon-cards');
  const touched = new Set();
  const seen = new MutationObserver((records) => {
    for (const r of records) {
      const card = (r.target.nodeType === 1 ? r.target : r.target.parentElement).closest('article');
      if (card) touched.add(card.dataset.daemonId);
    }
  });
  seen.observe(grid, {subtree: true, childList: true, characterData: true, attributes: true});
  let longest = 0;
  const tasks = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) longest = Math.max(longest, entry.duration);
  });
  tasks.observe({type: 'longtask'});
  let last = performance.now(), gap = 0, frames = 0;
  const end = last + ms;
  const frame = (now) => {
    gap = Math.max(gap, now - last); last = now; frames += 1;
    if (now < end) requestAnimationFrame(frame);
    else { seen.disconnect(); tasks.disconnect();
           done({gap, longest, frames, touched: touched.size}); }
  };
  requestAnimationFrame(frame);
})"""


def main() -> None:
    args = parse_args()
    with harness.BenchServices() as bench:
        ids = seed(bench, args.daemons)
        web = bench.start_web()
        api_get(web, 5)  # imports, pools, the first encoding of every row
        with Heartbeats(bench, ids, args.beats) as beats:
            api_ms = drive(web, args.rate, args.seconds, args.fresh)
        passes, limits = supervisor_passes(bench, args.passes)
        page = browse(bench, web, ids, args)
    figures = {
        "daemons": args.daemons,
        "rate": args.rate,
        "seconds": args.seconds,
        "fresh": args.fresh,
        "beats_per_s": beats.achieved,
        "api_p99_ms": summary_figures(api_ms)["p99_ms"],
        "api": summary_figures(api_ms),
        "supervisor_pass_ms": summary_figures(passes)["p50_ms"],
        "supervisor_pass": summary_figures(passes),
        "limits_query_ms": limits,
        **page,
    }
    print(table(["measure", "n", "p50 ms", "p90 ms", "p99 ms", "max ms"], [
        summary_row(f"GET /api/daemons ({args.daemons} daemons, {args.rate}/s)", api_ms),
        summary_row("supervisor pass", passes),
    ]))  # fmt: skip
    print(f"limit samples: batched {limits['batched']} ms, one query a daemon "
          f"{limits['per_daemon']} ms")  # fmt: skip
    print(f"page: rendered {page['page_render_ms']} ms, max frame gap "
          f"{page['page_max_frame_gap_ms']} ms, longest task {page['page_longest_task_ms']} ms, "
          f"{page['page_cards_updated']} cards updated; {machine_load()}")  # fmt: skip
    if args.json:
        print_json("api_scale", figures)


def seed(bench, count: int) -> list[str]:
    with bench.app.app_context():
        db.session.execute(text("DELETE FROM daemons"))
        db.session.execute(text(SEED), {"worker": WORKER, "count": count})
        db.session.execute(text(SAMPLES))
        db.session.commit()
        ids = [str(row.id) for row in all_daemon_rows()]
        pipe = get_redis().pipeline(transaction=False)
        for daemon_id in ids:  # a live instance each, for the bench's length
            pipe.set(lease_key(daemon_id), 1, px=3_600_000)
        pipe.execute()
        db.session.remove()
    note(f"seeded {count} RUNNING daemons with leases")
    return ids


class Heartbeats:
    """A process of its own (no GIL shared with the timed client) writing ``rate``
    heartbeats/s, round robin, as runtimes do: change_daemon, the row and its event."""

    def __init__(self, bench, ids: list[str], rate: float) -> None:
        context = multiprocessing.get_context("spawn")
        self.stop, self.written = context.Event(), context.Value("i", 0)
        self.process = context.Process(
            target=beat, args=(bench.env, ids, rate, self.stop, self.written), daemon=True
        )
        self.achieved = 0.0

    def __enter__(self) -> Heartbeats:
        self.started = time.monotonic()
        self.process.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.stop.set()
        self.process.join(10)
        if self.process.is_alive():
            self.process.kill()
        self.achieved = round(self.written.value / (time.monotonic() - self.started), 1)


def beat(env: dict, ids: list[str], rate: float, stop, written) -> None:
    os.environ.update(env)
    from stashhog import create_app

    with create_app().app_context():
        start, count = time.monotonic(), 0
        while not stop.is_set() and rate > 0:
            change_daemon(ids[count % len(ids)], if_generation=1, last_heartbeat=datetime.now(UTC))
            count += 1
            written.value = count
            pause = start + count / rate - time.monotonic()
            if pause > 0:
                stop.wait(pause)


def api_get(web, count: int) -> list[float]:
    connection = http.client.HTTPConnection(urlsplit(web.url).netloc, timeout=30)
    took = []
    for _ in range(count):
        took.append(timed_get(connection, web.token, time.perf_counter()))
    connection.close()
    return took


FRESH = {"Cache-Control": "no-cache"}  # --fresh: every request builds its list


def timed_get(connection, token: str, scheduled: float, fresh: bool = False) -> float:
    headers = {**harness.bearer(token), **(FRESH if fresh else {})}
    connection.request("GET", "/api/daemons", headers=headers)
    reply = connection.getresponse()
    body = reply.read()
    if reply.status != 200 or not body.startswith(b'{"daemons":'):
        raise RuntimeError(f"GET /api/daemons: {reply.status} {body[:200]!r}")
    return (time.perf_counter() - scheduled) * 1000


def drive(web, rate: float, seconds: float, fresh: bool = False) -> list[float]:
    """Open loop: request i is due at start + i/rate; 8 client threads, one connection each."""
    local = threading.local()
    netloc = urlsplit(web.url).netloc

    def one(scheduled: float) -> float:
        if not hasattr(local, "connection"):
            local.connection = http.client.HTTPConnection(netloc, timeout=30)
        try:
            return timed_get(local.connection, web.token, scheduled, fresh)
        except (http.client.RemoteDisconnected, ConnectionError):
            # An idle keep-alive connection the server closed (gunicorn keepalive = 5 s):
            # once more on a new one; the time still runs from the schedule.
            local.connection = http.client.HTTPConnection(netloc, timeout=30)
            return timed_get(local.connection, web.token, scheduled, fresh)

    count = int(rate * seconds)
    note(f"{count} GET /api/daemons at {rate:g}/s")
    start = time.perf_counter() + 0.05
    with ThreadPoolExecutor(8) as pool:
        futures = []
        for i in range(count):
            due = start + i / rate
            time.sleep(max(0.0, due - time.perf_counter()))
            futures.append(pool.submit(one, due))
        return [future.result() for future in futures]


def supervisor_passes(bench, count: int) -> tuple[list[float], dict]:
    with bench.app.app_context():
        supervisor.reconcile()  # the first is a cluster start (boot)
        took = []
        for _ in range(count):
            started = time.perf_counter()
            report = supervisor.reconcile()
            took.append((time.perf_counter() - started) * 1000)
            if report is None:
                raise RuntimeError("another supervisor pass held the lock")
            time.sleep(0.05)
        rows = daemon_limits.enforced(all_daemon_rows())
        started = time.perf_counter()
        batched = daemon_limits.latest_samples(rows)
        middle = time.perf_counter()
        one_each = {row.id: daemon_limits._latest_samples(row) for row in rows}
        ended = time.perf_counter()
        if batched != one_each:
            raise RuntimeError("the batched limit samples differ from one query a daemon")
        db.session.remove()
    limits = {"daemons": len(rows), "batched": round((middle - started) * 1000, 2),
              "per_daemon": round((ended - middle) * 1000, 2)}  # fmt: skip
    return took, limits


def browse(bench, web, ids: list[str], args) -> dict:
    from playwright.sync_api import sync_playwright

    path = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, headless=True,
                                             args=CHROMIUM_ARGS)  # fmt: skip
        page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        page.goto(f"{web.url}/daemons")  # to the login form first
        page.fill("input[name=username]", harness.BENCH_USER)
        page.fill("input[name=password]", bench.password)
        page.click("button[type=submit]")
        page.wait_for_url(f"{web.url}/daemons")
        page.reload()
        count = len(ids)
        page.wait_for_function(
            "(n) => document.querySelectorAll('#daemon-cards article').length >= n",
            arg=count, polling="raf", timeout=60_000,
        )  # fmt: skip
        rendered = page.evaluate("performance.now()")
        page.wait_for_selector('#live-pill[data-state="live"]')
        with Heartbeats(bench, ids, args.events):
            watched = page.evaluate(WATCH_JS, args.event_seconds * 1000)
        browser.close()
    return {
        "page_render_ms": round(rendered, 1),
        "page_max_frame_gap_ms": round(watched["gap"], 1),
        "page_longest_task_ms": round(watched["longest"], 1),
        "page_frames": watched["frames"],
        "page_cards_updated": watched["touched"],
        "page_events_per_s": args.events,
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--daemons", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=50, help="GET /api/daemons per second")
    parser.add_argument("--seconds", type=float, default=20, help="of requests")
    parser.add_argument("--beats", type=float, default=100, help="heartbeats/s meanwhile")
    parser.add_argument("--events", type=float, default=200, help="heartbeats/s on the page")
    parser.add_argument("--event-seconds", type=float, default=5)
    parser.add_argument("--passes", type=int, default=20, help="supervisor passes timed")
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="send Cache-Control: no-cache: no list reused between requests",
    )
    parser.add_argument("--quick", action="store_true", help="200 daemons, a few seconds each")
    add_json_option(parser)
    args = parser.parse_args()
    if args.quick:
        args.daemons, args.seconds, args.passes, args.event_seconds = 200, 4, 3, 2
    return args


if __name__ == "__main__":
    main()
