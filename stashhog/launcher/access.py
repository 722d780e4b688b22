"""``make run`` is never open: Flower's password, and the panel's first admin.

Flower gets ``--basic-auth`` from FLOWER_BASIC_AUTH (``user:password``); when it is unset the
launcher generates one, once, into ``instance/flower_basic_auth`` (mode 0600) and every run
reads it from there. On a database with no user yet, the launcher creates ``admin`` with a
random password and prints it once, beside the panel's URL.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

from stashhog.config import ROOT

FLOWER_AUTH_FILE = ROOT / "instance" / "flower_basic_auth"
FLOWER_USER = "flower"
USERS_INIT_TIMEOUT = 60.0


def write_secret_file(path: Path, text: str) -> bool:
    """Write ``text`` to ``path`` (mode 0600) unless it exists; True if written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as file:
        file.write(text + "\n")
    return True


def flower_basic_auth(env: dict[str, str], path: Path = FLOWER_AUTH_FILE) -> str:
    """Where Flower's credentials come from: FLOWER_BASIC_AUTH, else ``path`` (created with
    a random password), read into ``env`` for the Procfile's flower line, which refuses to
    start without it."""
    if env.get("FLOWER_BASIC_AUTH"):
        return "FLOWER_BASIC_AUTH"
    write_secret_file(path, f"{FLOWER_USER}:{secrets.token_urlsafe(16)}")
    env["FLOWER_BASIC_AUTH"] = path.read_text().strip()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def create_first_admin(env: dict[str, str]) -> tuple[str, str] | None:
    """``flask users init``: (username, password) when it created the first admin, None when
    there were users already."""
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", "users", "init", "--json"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=USERS_INIT_TIMEOUT,
    )
    if result.returncode != 0:
        raise RuntimeError(f"could not check for a first user: {result.stderr.strip()[-2000:]}")
    reply = json.loads(result.stdout)
    return (reply["username"], reply["password"]) if reply["created"] else None


def banner_lines(env: dict[str, str], flower_source: str, admin: tuple[str, str] | None):
    """What the banner adds: how to sign in to Flower, and the first admin (once)."""
    user = env["FLOWER_BASIC_AUTH"].split(":", 1)[0]
    lines = [f"          Flower asks for user {user!r}; the password is in {flower_source}"]
    if admin:
        username, password = admin
        lines += [
            f"sign in   user {username!r}, password {password!r} (shown this once)",
            f"          change it: flask --app app users set-password {username}",
        ]
    return lines
