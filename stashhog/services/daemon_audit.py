"""The operator's daemon commands in the audit trail and in each daemon's own log.

``audited(action)`` decorates a command on one daemon (its first argument the daemon's id or
name; its result the daemon as the API shows it, alone or as a command reply's ``daemon``):
the audit trail records who asked, from where and what came of it, and the daemon's own log
says who acted, e.g. "Stop requested by alice from 10.0.0.7: stopping". ``audited_bulk``
does the same for start-all, stop-all and restart-all (each daemon's log names the actor
too), ``audited_update`` records a change with the values before and after (secret keys
masked, as the API shows them). The supervisor's own commands (``operator=False``, or no
actor at all) are not operator actions and are not recorded.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from typing import Any

from stashhog.auth import audit
from stashhog.auth.actor import SYSTEM, Actor, current_actor
from stashhog.serializers import daemon_to_dict
from stashhog.services.daemon_logs import write_supervisor_log
from stashhog.services.daemon_queries import find_daemon_row


def who(actor: Actor) -> str:
    return f"{actor.label} from {actor.address}" if actor.address else actor.label


def note_in_daemon_log(daemon_id: uuid.UUID | str, text: str) -> None:
    write_supervisor_log(uuid.UUID(str(daemon_id)), "INFO", text)


def audited(action: str, target: str = "daemon") -> Callable:
    def decorate(command: Callable[..., dict]) -> Callable[..., dict]:
        @functools.wraps(command)
        def run(ref: Any, *args: Any, **kwargs: Any) -> dict:
            actor = current_actor()
            if kwargs.get("operator") is False or actor is SYSTEM:
                return command(ref, *args, **kwargs)
            with audit.action(f"{target}.{action}", target, id=ref) as entry:
                result = command(ref, *args, **kwargs)
                subject = result.get(target, result)
                entry.target(subject["id"], subject.get("name") or subject.get("type"))
                entry.message = result.get("message")
            if target == "daemon" and result.get("changed", True) and action != "delete":
                message = f": {entry.message}" if entry.message else ""
                note_in_daemon_log(subject["id"], f"{action.title()} by {who(actor)}{message}")
            return result

        return run

    return decorate


def audited_bulk(action: str) -> Callable:
    def decorate(command: Callable[[], dict]) -> Callable[[], dict]:
        @functools.wraps(command)
        def run() -> dict:
            with audit.action(f"daemon.{action}", "daemons", name="all") as entry:
                result = command()
                entry.message = f"{result['changed']} of {result['requested']} changed"
                if result["errors"]:
                    entry.details["errors"] = result["errors"]
            return result

        return run

    return decorate


def audited_update(command: Callable[..., dict]) -> Callable[..., dict]:
    @functools.wraps(command)
    def run(ref: Any, **kwargs: Any) -> dict:
        actor = current_actor()
        if actor is SYSTEM:
            return command(ref, **kwargs)
        with audit.action("daemon.update", "daemon", name=str(ref)) as entry:
            before = daemon_to_dict(find_daemon_row(ref))
            result = command(ref, **kwargs)
            daemon, changed = result["daemon"], result["updated"]
            entry.target(daemon["id"], daemon["name"])
            entry.change(*changes(before, daemon, changed))
            entry.message = f"changed {', '.join(changed)}" if changed else "nothing changed"
        if changed:
            note_in_daemon_log(daemon["id"], f"Settings changed by {who(actor)}: "
                               f"{', '.join(changed)}")  # fmt: skip
        return result

    return run


def changes(before: dict, after: dict, fields: list[str]) -> tuple[dict, dict]:
    """The changed fields before and after; of the configuration, only the keys that
    differ."""
    old = {field: before.get(field) for field in fields}
    new = {field: after.get(field) for field in fields}
    if "configuration" in fields:
        was, now = before["configuration"] or {}, after["configuration"] or {}
        keys = sorted(k for k in {*was, *now} if was.get(k) != now.get(k))
        old["configuration"] = {k: was.get(k) for k in keys}
        new["configuration"] = {k: now.get(k) for k in keys}
    return old, new
