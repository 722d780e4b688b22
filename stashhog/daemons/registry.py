"""Maps ``DaemonType`` to daemon classes. Adding a daemon type is one module and one line
in ``stashhog/daemons/__init__.py``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stashhog.daemons.config import mask_secrets
from stashhog.errors import UnknownDaemonType

if TYPE_CHECKING:
    from stashhog.daemons.base import BaseDaemon

_registry: dict[str, type[BaseDaemon]] = {}


def register(daemon_type: str):
    """Class decorator: ``@register(DaemonType.TEST_DAEMON)``."""

    def decorate(cls: type[BaseDaemon]) -> type[BaseDaemon]:
        cls.daemon_type = str(daemon_type)
        _registry[str(daemon_type)] = cls
        return cls

    return decorate


def get_daemon_class(daemon_type: str) -> type[BaseDaemon]:
    try:
        return _registry[str(daemon_type)]
    except KeyError:
        raise UnknownDaemonType(str(daemon_type)) from None


def shown_configuration(daemon_type: str, configuration: Any) -> Any:
    """A stored configuration as the API, the panel, events and exports show it: the type's
    secret keys masked. (A type that is not installed has no known secrets.)"""
    try:
        schema = get_daemon_class(daemon_type).Config
    except UnknownDaemonType:
        return configuration
    return mask_secrets(schema, configuration)


def daemon_classes() -> dict[str, type[BaseDaemon]]:
    """Every registered type and its class."""
    return dict(_registry)
