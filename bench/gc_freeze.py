"""Loaded by ``bench.memory --gc-freeze`` into the worker (through ``DAEMON_MODULES``): moves
everything the worker's main process has allocated into the GC's permanent generation before
the pool forks, so the children's collections never write to (and so never copy) those pages.
"""

from __future__ import annotations

import gc

from celery.signals import worker_init


@worker_init.connect
def freeze_before_fork(**_kwargs) -> None:
    gc.collect()
    gc.freeze()
