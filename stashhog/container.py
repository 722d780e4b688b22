"""The container image's entrypoint: ``python -m stashhog.container ARGS``.

``NAME`` alone, a Procfile process (release, web, daemons, jobs, supervisor, beat, flower),
runs that Procfile line in place of this process (``exec``: the signal a stop sends reaches
the server itself), after checking the settings so a bad one stops it with one line. Anything
else runs as given (``flask --app app users init``). ``probe live|ready|flower`` is the
health check: a GET on this container's liveness (``/api/health/live``) or readiness
(``/api/health``) endpoint, or Flower's ``/healthcheck``, under URL_PREFIX; exit 0 on 200.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

from honcho.environ import parse_procfile

from stashhog import config

PROBE_TIMEOUT = 4.0
# Kept light (no app, no launcher): a health check runs this every few seconds.


def procfile_commands() -> dict[str, str]:
    return dict(parse_procfile((config.ROOT / "Procfile").read_text()).processes)


def here(host: str) -> str:
    """This container's own address for a server bound to ``host``, as it goes in a URL."""
    if host in ("0.0.0.0", "", "::"):
        host = "::1" if host == "::" else "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def probe_url(kind: str, settings: config.Settings) -> str:
    # The app refuses a URL_PREFIX that is not a path (stashhog.web.prefix) before it serves.
    segments = settings.URL_PREFIX.strip().strip("/")
    prefix = f"/{segments}" if segments else ""
    if kind == "flower":  # the Procfile serves Flower under <prefix>/flower when there is one
        path = f"{prefix}/flower/healthcheck" if prefix else "/healthcheck"
        port = settings.FLOWER_PORT
    else:
        path = prefix + {"live": "/api/health/live", "ready": "/api/health"}[kind]
        port = settings.PORT
    return f"http://{here(settings.HOST)}:{port}{path}"


def probe(kind: str) -> int:
    # No proxy: the request is for this container only, whatever http_proxy says.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    url = probe_url(kind, config.settings_model())
    try:
        with opener.open(url, timeout=PROBE_TIMEOUT) as reply:
            return 0 if reply.status == 200 else 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"{url}: {exc}", file=sys.stderr)
        return 1


def main(argv: list[str]) -> int:
    if not argv:
        raise SystemExit("usage: NAME (a Procfile process) | probe live|ready|flower | COMMAND")
    try:
        config.settings_model()
        if argv[0] == "probe" and len(argv) == 2 and argv[1] in ("live", "ready", "flower"):
            return probe(argv[1])
    except ValueError as exc:  # a SettingsError, or a URL_PREFIX that is not a path
        print(f"stashhog: {exc}", file=sys.stderr)
        return config.BAD_CONFIGURATION_EXIT
    env = config.environment()
    commands = procfile_commands()
    if len(argv) == 1 and argv[0] in commands:
        if argv[0] == "daemons":  # the pool's default concurrency, as `make run` gives it
            env.update(config.daemons_worker_env(env))
        os.execvpe("/bin/sh", ["/bin/sh", "-c", f"exec {commands[argv[0]]}"], env)
    os.execvpe(argv[0], argv, env)
    return 127  # not reached: exec replaces this process or raises


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
