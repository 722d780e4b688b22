"""Observability fixtures: a daemons worker sampling every 0.5 s, a webhook receiver on
loopback, and tables emptied of alerts, rules and channels."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import text

from stashhog.events import get_redis, key
from stashhog.extensions import db
from tests.support.isolation import only_worker_on_queue
from tests.support.workers import start_daemons_worker


@pytest.fixture(scope="module")
def sampling_worker(worker_env, celery_app):
    """The only daemons worker while the module runs, stopped after it: left running beside
    the session's worker it took daemons that later tests expect on theirs."""
    worker = start_daemons_worker({**worker_env, "STASHHOG_METRICS_INTERVAL": "0.5"}, celery_app)
    try:
        with only_worker_on_queue(celery_app, "daemons", worker):
            yield worker
    finally:
        worker.stop()


@pytest.fixture
def clean_alerts(clean_db):
    for table in ("alert_deliveries", "alert_channels", "alerts", "alert_rules"):
        db.session.execute(text(f"DELETE FROM {table}"))
    db.session.commit()
    get_redis().delete(key("alerts", "notify"))
    return db


class Receiver:
    """A real HTTP server on loopback that records JSON POSTs; ``fail_first`` answers 500."""

    def __init__(self, fail_first: int = 0) -> None:
        self.bodies: list[dict] = []
        self.fail_first = fail_first
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                failing = receiver.fail_first > 0
                receiver.fail_first -= 1
                if not failing:
                    receiver.bodies.append(body)
                self.send_response(500 if failing else 204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self) -> list[dict]:
        return [event for body in self.bodies for event in body["events"]]


@pytest.fixture
def receiver():
    made: list[Receiver] = []

    def make(fail_first: int = 0) -> Receiver:
        made.append(Receiver(fail_first))
        return made[-1]

    yield make
    for server in made:
        server.server.shutdown()
