"""What ``python -m bench`` writes to ``bench/results/``: the machine's description and the
summary as a Markdown file, the raw figures as JSON beside it."""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import psutil
import psycopg2
import redis

from tests.support import services
from tests.support.workers import ROOT

RESULTS = ROOT / "bench" / "results"


def _first(path: str, prefix: str) -> str:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(prefix):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def _server_versions() -> dict[str, str]:
    versions = {}
    url = os.environ.get("TEST_DATABASE_URL", services.DEFAULT_DATABASE_URL)
    try:
        with psycopg2.connect(url, connect_timeout=5) as conn, conn.cursor() as cursor:
            cursor.execute("SHOW server_version")
            versions["postgresql"] = cursor.fetchone()[0]
            cursor.execute("SHOW max_connections")
            versions["postgresql_max_connections"] = cursor.fetchone()[0]
        conn.close()
    except psycopg2.Error as exc:
        versions["postgresql"] = f"unreachable ({exc})"
    try:
        client = redis.Redis.from_url(
            os.environ.get("TEST_REDIS_URL", services.DEFAULT_REDIS_URL), socket_timeout=5
        )
        versions["redis"] = client.info("server")["redis_version"]
        client.close()
    except redis.RedisError as exc:
        versions["redis"] = f"unreachable ({exc})"
    return versions


def _commit() -> str:
    def git(*args: str) -> str:
        result = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return result.stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return head + (" (with uncommitted changes)" if git("status", "--porcelain") else "")


def machine() -> dict:
    """This machine and its services, as the results file describes them."""
    import celery

    return {
        "hostname": socket.gethostname(),
        "cpu": _first("/proc/cpuinfo", "model name"),
        "cores": os.cpu_count(),
        "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "kernel": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "celery": celery.__version__,
        **_server_versions(),
        "commit": _commit(),
    }


def markdown(title: str, description: dict, rows: list[list[str]], headers: list[str],
             outputs: dict[str, str]) -> str:  # fmt: skip
    """The results file: the machine, the summary table, then each bench's own tables."""

    def cells(row: list[str]) -> str:
        return "| " + " | ".join(str(cell).replace("|", "\\|") for cell in row) + " |"

    lines = [f"# {title}", "", "## Machine", ""]
    lines += [f"- {name}: {value}" for name, value in description.items()]
    lines += ["", "## Summary", "", cells(headers), cells(["---"] * len(headers))]
    lines += [cells(row) for row in rows]
    for name, text in outputs.items():
        lines += ["", f"## {name}", "", "```", text.rstrip(), "```"]
    return "\n".join(lines) + "\n"


def write(results: Path, quick: bool, text: str, raw: dict) -> Path:
    """``<UTC date-time>-<hostname>[-quick].md`` and the ``.json`` beside it."""
    results.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H%M%SZ")
    stem = f"{stamp}-{socket.gethostname()}" + ("-quick" if quick else "")
    path = results / f"{stem}.md"
    path.write_text(text)
    (results / f"{stem}.json").write_text(json.dumps(raw, indent=1) + "\n")
    return path
