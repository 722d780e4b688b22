"""A remote-control command for the supervisor's last resort: SIGKILL of one pool child.

``revoke(terminate=True)`` cannot escalate: after the first terminate Celery counts the task
as finished (it leaves ``active_requests``), so a second revoke with SIGKILL finds nothing.
The supervisor broadcasts this command to the daemon's worker instead; the worker kills the
process only if it is one of its own children.
"""

from __future__ import annotations

import os
import signal

import psutil
from celery.worker.control import control_command


@control_command(args=[("pid", int)], signature="<pid>")
def kill_pool_process(state, pid: int) -> dict:
    try:
        if psutil.Process(pid).ppid() != os.getpid():
            return {"error": f"pid {pid} is not a child of this worker"}
        os.kill(pid, signal.SIGKILL)
    except (psutil.NoSuchProcess, ProcessLookupError):
        return {"ok": f"pid {pid} already gone"}
    return {"ok": f"killed pid {pid}"}
