"""The daemons worker's threads pool (``DAEMON_POOL=threads``, ``-P threads``): Celery's,
whose ``revoke(terminate=True)`` is not an error. A thread cannot be signalled (the stock
pool raises NotImplementedError into the worker's log at every stop); the stop reaches the
daemon on its control channel, published just before the revoke
(``stashhog.control.send_stop``), and a daemon stuck past the stop timeout restarts the
worker's process (workers/control.py). workers/signals.py puts this class in place of
``-P threads`` before Celery resolves the pool.
"""

from __future__ import annotations

import logging

from celery.concurrency.thread import TaskPool as CeleryThreadsPool

logger = logging.getLogger(__name__)


class TaskPool(CeleryThreadsPool):
    def terminate_job(self, pid, signal=None):
        logger.debug("terminate of a task in a threads worker: left to the control channel")
