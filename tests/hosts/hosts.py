"""Test hosts on one machine: network namespaces joined by veth pairs, with partitions made
by taking links down. (Delay and loss: tests/hosts/proxy.py, since this kernel has no
``sch_netem``: ``tc qdisc add ... netem`` answers "Specified qdisc kind is unknown".)

Every namespace and veth carries this session's PREFIX, which holds the test process's pid:
a sweep removes only what a run that is no longer alive left behind (several sessions may run
the suite at once). Addresses are 10.231.x.y/24 on veths between our own namespaces, and one
10.232.N.0/24 into the root namespace for the test process (N unused by another session);
no namespace has a default route, so no packet can leave the machine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field

PREFIX_ROOT = "shh"  # every name this suite creates starts with it (sweep_stale)
PREFIX = f"{PREFIX_ROOT}{os.getpid():x}"
SUBNET = "10.231"
ROOT_SUBNET = "10.232"


class HostsUnavailable(Exception):
    """Network namespaces cannot be made here (not root, no iproute2)."""


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(args, check=check, capture_output=True, text=True, timeout=20)


def check_available() -> None:
    if os.geteuid() != 0:
        raise HostsUnavailable("network namespaces need root")
    for tool in ("ip", "tc", "redis-server", "runuser"):
        if shutil.which(tool) is None:
            raise HostsUnavailable(f"{tool} is not installed")
    probe = f"{PREFIX}-probe"
    made = run("ip", "netns", "add", probe, check=False)
    if made.returncode != 0:
        raise HostsUnavailable(f"ip netns add failed: {made.stderr.strip()}")
    run("ip", "netns", "del", probe, check=False)


def _owner_gone(name: str, end: str) -> bool:
    """``name`` is PREFIX_ROOT + the owner's pid in hex + ``end`` + ...: is that pid gone?"""
    digits = name[len(PREFIX_ROOT) :].split(end, 1)[0]
    try:
        os.kill(int(digits, 16), 0)
    except ValueError:
        return False  # not one of ours
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def sweep_stale(only: str | None = None) -> list[str]:
    """Delete namespaces (and so their veths) of runs whose test process is gone; with
    ``only``, this run's own (at its end)."""
    listing = run("ip", "netns", "list", check=False).stdout.split("\n")
    names = [line.split()[0] for line in listing if line.strip()]
    stale = [
        name
        for name in names
        if name.startswith(PREFIX_ROOT)
        and (name.startswith(f"{only}-") if only else _owner_gone(name, "-"))
    ]
    for name in stale:
        run("ip", "netns", "del", name, check=False)
    for line in run("ip", "-o", "link", "show", check=False).stdout.splitlines():
        dev = line.split(":")[1].strip().split("@")[0]
        if dev.startswith(PREFIX_ROOT) and (
            dev.startswith(f"{only}x") if only else _owner_gone(dev, "x")
        ):
            run("ip", "link", "del", dev, check=False)
    return stale


def free_root_subnet() -> str:
    """A 10.232.N prefix no other session uses in the root namespace."""
    used = run("ip", "-o", "-4", "addr", "show", check=False).stdout
    for step in range(250):
        candidate = f"{ROOT_SUBNET}.{(os.getpid() + step) % 250 + 1}"
        if f" {candidate}." not in used:
            return candidate
    raise HostsUnavailable("no free 10.232.N/24 in the root namespace")


@dataclass
class Link:
    """A veth pair: ``a_dev`` in namespace ``a`` (address ``a_ip``), ``b_dev`` in ``b``."""

    name: str
    a: str | None  # None: the root namespace
    b: str
    a_dev: str
    b_dev: str
    a_ip: str
    b_ip: str

    def _ip(self, side: str | None, *args: str, check: bool = True):
        return run("ip", *(("-n", side) if side else ()), *args, check=check)

    def down(self) -> None:
        """A partition: the host side goes down (the peer loses carrier)."""
        self._ip(self.b, "link", "set", self.b_dev, "down")

    def up(self) -> None:
        self._ip(self.b, "link", "set", self.b_dev, "up")


@dataclass
class Network:
    """Namespaces and links of one test session; ``teardown()`` removes them all."""

    namespaces: list[str] = field(default_factory=list)
    links: dict[str, Link] = field(default_factory=dict)
    _next_subnet: int = 1

    def namespace(self, role: str) -> str:
        name = f"{PREFIX}-{role}"
        run("ip", "netns", "add", name)
        self.namespaces.append(name)
        run("ip", "-n", name, "link", "set", "lo", "up")
        return name

    def link(self, name: str, a: str | None, b: str, subnet: str | None = None) -> Link:
        """A veth between ``a`` (None: the root namespace) and ``b`` on its own /24
        (``subnet``, else the next 10.231.N): ``a`` is .1, ``b`` is .2. Only the /24 is
        routed: no default route anywhere."""
        number = self._next_subnet
        self._next_subnet += 1
        subnet = subnet or f"{SUBNET}.{number}"
        a_dev, b_dev = f"{PREFIX}x{number}a", f"{PREFIX}x{number}b"
        a_ip, b_ip = f"{subnet}.1", f"{subnet}.2"
        run("ip", "link", "add", a_dev, "type", "veth", "peer", "name", b_dev)
        if a is not None:
            run("ip", "link", "set", a_dev, "netns", a)
        run("ip", "link", "set", b_dev, "netns", b)
        for ns, dev, ip in ((a, a_dev, a_ip), (b, b_dev, b_ip)):
            prefix = ("-n", ns) if ns else ()
            run("ip", *prefix, "addr", "add", f"{ip}/24", "dev", dev)
            run("ip", *prefix, "link", "set", dev, "up")
        made = Link(name, a, b, a_dev, b_dev, a_ip, b_ip)
        self.links[name] = made
        return made

    def teardown(self) -> None:
        for made in self.links.values():
            if made.a is None:  # the root end: deleting it deletes the pair
                run("ip", "link", "del", made.a_dev, check=False)
        for name in reversed(self.namespaces):
            run("ip", "netns", "del", name, check=False)
        self.links.clear()
        self.namespaces.clear()


def in_namespace(namespace: str, command: list[str]) -> list[str]:
    """``command`` run inside ``namespace`` (ip netns exec execs it: the pid is the
    command's own)."""
    return ["ip", "netns", "exec", namespace, *command]
