"""A delete racing a start, on a real daemons worker: either the start wins (the delete is
refused) or the delete wins (the start finds nothing); never an instance running without a row.
"""

from __future__ import annotations

import threading
import time

from stashhog.errors import Conflict, NotFound
from stashhog.services import daemon_catalog, daemon_control
from stashhog.services.lease import lease_holder
from tests.support.wait import eventually

ROUNDS = 12


def race(app, daemon_id) -> dict[str, str]:
    """Start and delete at once; what each of them ended with."""
    outcomes: dict[str, str] = {}
    barrier = threading.Barrier(2)

    def attempt(name: str, action) -> None:
        with app.app_context():
            barrier.wait()
            try:
                action(daemon_id)
                outcomes[name] = "done"
            except (Conflict, NotFound) as exc:
                outcomes[name] = type(exc).__name__

    threads = [
        threading.Thread(target=attempt, args=("start", daemon_control.start_daemon)),
        threading.Thread(target=attempt, args=("delete", daemon_catalog.delete_daemon)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(15)
    return outcomes


def test_a_delete_racing_a_start_never_leaves_an_instance_without_a_row(
    app, app_ctx, make_daemon, daemons_worker
):
    seen = set()
    deleted = []
    for number in range(ROUNDS):
        daemon = make_daemon(name=f"race-{number}", configuration={"heartbeat_interval": 0.5})
        outcome = race(app, daemon.id)
        seen.add((outcome["start"], outcome["delete"]))
        assert outcome in (
            {"start": "done", "delete": "Conflict"},  # the start took the row first
            {"start": "NotFound", "delete": "done"},  # the delete did
        ), outcome
        if outcome["delete"] == "done":
            deleted.append(daemon.id)
        else:
            daemon_control.stop_daemon(daemon.id, wait=10)
    time.sleep(1.0)  # an instance dispatched anyway would have claimed by now
    for daemon_id in deleted:
        # No instance holds (or keeps renewing) a lease for a daemon that is gone.
        eventually(lambda d=daemon_id: lease_holder(d) is None, timeout=5)
    assert seen, "no round ran"
