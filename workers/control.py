"""A remote-control command for the supervisor's last resort: SIGKILL of one pool child.

``revoke(terminate=True)`` cannot escalate: after the first terminate Celery counts the task
as finished (it leaves ``active_requests``), so a second revoke with SIGKILL finds nothing.
The supervisor broadcasts this command to the daemon's worker instead; the worker kills the
process only if it is one of its own children.

A threads worker (``-P threads``) runs its daemons in threads of its own process, and a
thread cannot be killed: the ``pid`` is then the worker's own, and the worker restarts
itself (``restart_worker_process``): a shutdown stop to every other local daemon (they end
STOPPED, "worker shut down", and the supervisor starts them again), up to the stop timeout
for them, then ``exec`` of the same command line in the same process (same pid and name), so
the stuck thread is gone with the old image.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time

import psutil
from celery.worker.control import control_command

from workers import process_services

logger = logging.getLogger(__name__)
_restarting = threading.Lock()


@control_command(args=[("pid", int)], signature="<pid>")
def kill_pool_process(state, pid: int) -> dict:
    if pid == os.getpid() and process_services.pool_kind() == process_services.THREADS:
        if not _restarting.acquire(blocking=False):
            return {"ok": "worker already restarting"}
        hostname = state.consumer.hostname
        threading.Thread(target=restart_worker_process, args=(hostname,), daemon=True).start()
        return {"ok": f"threads worker {hostname}: restarting its process (pid {pid})"}
    try:
        if psutil.Process(pid).ppid() != os.getpid():
            return {"error": f"pid {pid} is not a child of this worker"}
        os.kill(pid, signal.SIGKILL)
    except (psutil.NoSuchProcess, ProcessLookupError):
        return {"ok": f"pid {pid} already gone"}
    return {"ok": f"killed pid {pid}"}


def restart_worker_process(hostname: str) -> None:
    from celery import current_app as celery

    from workers.signals import ask_local_daemons_to_stop

    app = celery.flask_app
    logger.error("a daemon did not stop within the stop timeout: restarting worker %s "
                 "(pid %d), a thread cannot be killed", hostname, os.getpid())  # fmt: skip
    try:
        services = process_services.services_for(app, hostname)
        stuck = services.leases.stopping()
        ask_local_daemons_to_stop(app, hostname)
        deadline = time.monotonic() + app.config["STOP_TIMEOUT"] + 1
        while time.monotonic() < deadline and services.leases.running(besides=stuck):
            time.sleep(0.1)
    except Exception:
        logger.exception("could not stop the other daemons first; restarting anyway")
    try:  # what still runs ends with this image: a successor need not wait for the TTL
        with app.app_context():
            process_services.services_for(app, hostname).leases.release_all()
    except Exception:
        logger.exception("leases not released; they expire within the TTL")
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    # The same interpreter and arguments as this process was started with (python -m celery
    # worker ...), in place: the pid stays, so whatever supervises the worker sees no exit.
    os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])
