"""The lock files: every package pinned with hashes, each of pyproject.toml's dependencies
locked at a version it allows, the test set the runtime set plus the test tools at the same
pins; ``make run`` installs the runtime lock only, ``make test`` the test lock, both with
--require-hashes and neither upgrading pip."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
RUNTIME = [Requirement(line) for line in PROJECT["dependencies"]]
TEST_TOOLS = [Requirement(line) for line in PROJECT["optional-dependencies"]["test"]]


def locked(name: str) -> dict[str, str]:
    """``{package: version}`` of a lock file; each entry must carry at least one hash."""
    text = (ROOT / "requirements" / name).read_text()
    entries = re.findall(
        r"^([A-Za-z0-9._-]+)==(\S+) \\\n((?:\s+--hash=sha256:[0-9a-f]{64}.*\n)+)", text, re.M
    )
    pins = {canonicalize_name(package): version for package, version, _hashes in entries}
    requirement_lines = [line for line in text.splitlines() if re.match(r"[A-Za-z0-9]", line)]
    assert len(requirement_lines) == len(pins), f"{name}: an entry without == and a hash"
    return pins


@pytest.mark.parametrize(
    "lock, requirements",
    [("run.txt", RUNTIME), ("test.txt", RUNTIME + TEST_TOOLS)],
)
def test_every_dependency_is_locked_at_a_version_pyproject_allows(lock, requirements):
    pins = locked(lock)
    for requirement in requirements:
        version = pins.get(canonicalize_name(requirement.name))
        assert version, f"{requirement.name} is not in requirements/{lock}: run make lock"
        assert requirement.specifier.contains(version), f"{requirement} but {lock} has {version}"


def test_the_test_set_is_the_runtime_set_plus_the_test_tools_at_the_same_pins():
    run, test = locked("run.txt"), locked("test.txt")
    assert {package: test.get(package) for package in run} == run
    for tool in ("pytest", "playwright", "schemathesis", "hypothesis", "ruff"):
        assert tool in test and tool not in run
    assert "pip" in locked("pip.txt")


def make_dry_run(target: str) -> str:
    # -B: every recipe, as in a clean clone; -n: printed, not run.
    result = subprocess.run(
        ["make", "-n", "-B", target], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_make_run_installs_the_runtime_lock_and_make_test_the_test_lock():
    run, test = make_dry_run("run"), make_dry_run("test")
    assert "install --quiet --require-hashes -r requirements/run.txt" in run
    assert "requirements/test.txt" not in run
    assert "install --quiet --require-hashes -r requirements/test.txt" in test
    for recipe in (run, test):
        assert "--upgrade" not in recipe
        assert "install --quiet --require-hashes -r requirements/pip.txt" in recipe
        assert "--no-deps --no-build-isolation -e ." in recipe
