"""Daemon types. Each module registers its class; list it here to make the type available."""

import importlib

from flask import Flask

from stashhog.daemons import metadata_generate_watcher, test_daemon  # noqa: F401
from stashhog.daemons.base import BaseDaemon
from stashhog.daemons.config import DaemonConfig, describe
from stashhog.daemons.registry import get_daemon_class

__all__ = [
    "BaseDaemon",
    "DaemonConfig",
    "describe",
    "get_daemon_class",
]


def init_app(app: Flask) -> None:
    """Import the extra daemon modules named in ``DAEMON_MODULES``; each registers its types."""
    for module in filter(None, (m.strip() for m in app.config["DAEMON_MODULES"].split(","))):
        importlib.import_module(module)
