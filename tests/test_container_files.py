"""The container files, checked statically (no container engine runs on these machines):
compose.yaml parses, runs each Procfile process from the image (exactly one beat and one
supervisor), sets only known settings with valid values, waits for ``release``, gives a stop
more than STASHHOG_STOP_TIMEOUT and wires health checks to the health endpoints; the
Dockerfile is slim, not root, and installs the runtime lock with --require-hashes. The image's
entrypoint and probe are run here for real."""

from __future__ import annotations

import http.server
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from stashhog import config
from stashhog.container import probe_url, procfile_commands
from stashhog.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())
SERVICES = COMPOSE["services"]
IMAGE = "stashhog-daemons:latest"
APP = {name: service for name, service in SERVICES.items() if service.get("image") == IMAGE}
VARIABLES = {field.validation_alias for field in Settings.model_fields.values()}
# What compose would ask .env for (the ${NAME:?...} variables), as a user would set them.
REQUIRED = {"POSTGRES_PASSWORD": "pw", "SECRET_KEY": "k" * 32, "FLOWER_BASIC_AUTH": "f:p"}
ENTRYPOINT = [sys.executable, "-m", "stashhog.container"]


def interpolate(value: str) -> str:
    """Compose's ${NAME}, ${NAME:-default} and ${NAME:?error}, with nothing else set."""

    def one(match: re.Match) -> str:
        name, operator, rest = match.group(1), match.group(2), match.group(3)
        if operator == ":-":
            return rest
        return REQUIRED[name]

    return re.sub(r"\$\{([A-Z_]+)(?:(:-|:\?)([^}]*))?\}", one, str(value)).replace("$$", "$")


def seconds(duration: str) -> float:
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, duration
    return sum(float(number) * units[unit] for number, unit in parts)


def test_every_procfile_process_runs_from_the_image_once():
    commands = procfile_commands()
    ran = [service["command"] for service in APP.values()]
    assert all(len(command) == 1 and command[0] in commands for command in ran), ran
    assert sorted(command[0] for command in ran) == sorted(commands)  # each exactly once
    assert APP["release"]["build"] == "." and all(s["build"] == "." for s in APP.values())


def test_only_known_settings_are_set_and_their_values_are_valid():
    for name, service in APP.items():
        environment = {key: interpolate(value) for key, value in service["environment"].items()}
        unknown = set(environment) - VARIABLES
        assert not unknown, f"{name} sets {unknown}, which stashhog/settings.py does not know"
        settings = config.settings_model(environment)  # refuses a bad value, naming it
        assert settings.SQLALCHEMY_DATABASE_URI.startswith("postgresql://stashhog:pw@postgres")
        assert settings.SECRET_KEY is not None  # the built-in key would be refused


def test_release_runs_once_and_everything_else_waits_for_it_and_the_services():
    release = APP["release"]
    assert release["restart"] == "no"
    for dependency in ("postgres", "redis"):
        assert release["depends_on"][dependency]["condition"] == "service_healthy"
    for name, service in APP.items():
        if name == "release":
            continue
        waits = service["depends_on"]
        assert waits["release"]["condition"] == "service_completed_successfully", name
        assert waits["postgres"]["condition"] == waits["redis"]["condition"] == "service_healthy"


def test_a_stop_gets_longer_than_the_stop_timeout():
    for name, service in APP.items():
        environment = {key: interpolate(value) for key, value in service["environment"].items()}
        stop_timeout = config.settings_model(environment).STOP_TIMEOUT
        assert seconds(service["stop_grace_period"]) > stop_timeout + 5, name


def test_health_checks_are_wired_to_the_health_endpoints_and_the_workers_own_names():
    for name in ("postgres", "redis"):
        assert SERVICES[name]["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL")
    probe = ["CMD", "python", "-m", "stashhog.container", "probe"]
    assert APP["web"]["healthcheck"]["test"] == [*probe, "ready"]
    assert APP["flower"]["healthcheck"]["test"] == [*probe, "flower"]
    commands = procfile_commands()
    for name in ("daemons", "jobs", "supervisor"):
        node = re.search(r"-n (\S+)@%h", commands[name]).group(1)
        test = APP[name]["healthcheck"]["test"]
        assert test[0] == "CMD-SHELL"
        assert f"celery -A app.celery inspect ping -d {node}@$$HOSTNAME" in test[1]
    # Every other process overrides the image's web check (it would never pass there).
    assert {n for n, s in APP.items() if s["healthcheck"].get("disable")} == {"release", "beat"}


def test_the_dockerfile_is_slim_not_root_and_installs_the_runtime_lock():
    dockerfile = (ROOT / "Dockerfile").read_text()
    joined = re.sub(r"\\\n\s*", " ", re.sub(r"^\s*#.*\n", "", dockerfile, flags=re.MULTILINE))
    instructions = [tuple(line.split(" ", 1)) for line in joined.splitlines() if line.strip()]
    assert instructions[0] == ("FROM", "python:3.11-slim")
    users = [argument for instruction, argument in instructions if instruction == "USER"]
    assert users and users[-1] not in ("root", "0")
    last_user = max(i for i, (instruction, _) in enumerate(instructions) if instruction == "USER")
    assert all(instruction != "RUN" for instruction, _ in instructions[last_user:])
    runs = " ".join(argument for instruction, argument in instructions if instruction == "RUN")
    assert "pip install --require-hashes -r requirements/run.txt" in runs
    assert "requirements/test.txt" not in dockerfile
    healthcheck = dict(instructions)["HEALTHCHECK"]
    assert '"stashhog.container", "probe", "live"]' in healthcheck
    assert dict(instructions)["CMD"] == '["web"]' and "web" in procfile_commands()
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".env", ".venv", ".git", "instance"} <= set(ignored)


def test_the_probe_asks_the_health_endpoints_under_the_prefix():
    settings = config.settings_model({"HOST": "0.0.0.0", "PORT": "8000", "URL_PREFIX": "/p/"})
    assert probe_url("live", settings) == "http://127.0.0.1:8000/p/api/health/live"
    assert probe_url("ready", settings) == "http://127.0.0.1:8000/p/api/health"
    assert probe_url("flower", settings) == "http://127.0.0.1:5555/p/flower/healthcheck"
    assert probe_url("flower", config.settings_model({})) == "http://127.0.0.1:5555/healthcheck"


class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        self.send_response(200 if self.path == "/p/api/health/live" else 503)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def health_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def run_entrypoint(*args: str, **variables: str) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(ROOT), **variables}
    return subprocess.run(
        [*ENTRYPOINT, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def test_the_probe_exits_0_on_200_only(health_server):
    where = {"PORT": str(health_server), "URL_PREFIX": "/p"}
    assert run_entrypoint("probe", "live", **where).returncode == 0
    ready = run_entrypoint("probe", "ready", **where)
    assert ready.returncode == 1 and "503" in ready.stderr


def test_the_entrypoint_runs_a_command_and_stops_on_a_bad_setting_with_one_line():
    ran = run_entrypoint("sh", "-c", 'echo "$URL_PREFIX"', URL_PREFIX="/panel")
    assert (ran.returncode, ran.stdout) == (0, "/panel\n")
    refused = run_entrypoint("web", PORT="http")
    assert refused.returncode == 4 and "Traceback" not in refused.stderr
    assert refused.stderr.startswith("stashhog: invalid setting: PORT: expected a port number")
