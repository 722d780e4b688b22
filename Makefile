# The two commands a new user needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Installs come from the hashed lock files (requirements/run.txt: what running needs;
# requirements/test.txt: that plus the test tools, the same pins). `make lock` refreshes them.
RUN_LOCK := requirements/run.txt
TEST_LOCK := requirements/test.txt
PIP_LOCK := requirements/pip.txt
PIP_STAMP := $(VENV)/.installed-pip
RUN_STAMP := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test
PIP := $(BIN)/python -m pip --disable-pip-version-check
# The project itself: no dependencies of its own (the lock has them), and built with the
# lock's setuptools rather than one fetched for an isolated build.
INSTALL_PROJECT := $(PIP) install --quiet --no-deps --no-build-isolation -e .
LOCK_VENV := .venv-lock
PIP_TOOLS := pip-tools==7.6.2
COMPILE := CUSTOM_COMPILE_COMMAND="make lock" $(LOCK_VENV)/bin/pip-compile --quiet \
	--generate-hashes --allow-unsafe --strip-extras \
	--no-emit-index-url --no-emit-find-links $(LOCK_ARGS)

.PHONY: run test lint format chaos bench clean lock

# The locked pip (requirements/pip.txt: pip 26 installs the sets about twice as fast as the
# pip a Python 3.11 venv starts with), once per venv and again only when the lock moves.
$(PIP_STAMP): $(PIP_LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --require-hashes -r $(PIP_LOCK)
	touch $@

$(RUN_STAMP): $(RUN_LOCK) pyproject.toml $(PIP_STAMP)
	$(PIP) install --quiet --require-hashes -r $(RUN_LOCK)
	$(INSTALL_PROJECT)
	touch $@

# The test set holds the runtime set with the same pins, so it stands for both stamps.
$(TEST_STAMP): $(TEST_LOCK) $(RUN_LOCK) pyproject.toml $(PIP_STAMP)
	$(PIP) install --quiet --require-hashes -r $(TEST_LOCK)
	$(INSTALL_PROJECT)
	touch $@ $(RUN_STAMP)

run: $(RUN_STAMP)
	$(BIN)/python -m stashhog.launcher

# Re-resolve both lock files from pyproject.toml (kept pins stay unless they must move).
# Upgrade one package: make lock LOCK_ARGS="--upgrade-package celery"; all: LOCK_ARGS=--upgrade
lock:
	test -x $(LOCK_VENV)/bin/pip-compile || \
		{ $(PYTHON) -m venv $(LOCK_VENV) && $(LOCK_VENV)/bin/python -m pip install --quiet $(PIP_TOOLS); }
	$(COMPILE) -o $(PIP_LOCK) requirements/pip.in
	$(COMPILE) --build-deps-for editable -o $(RUN_LOCK) pyproject.toml
	$(COMPILE) --build-deps-for editable --extra test -c $(RUN_LOCK) -o $(TEST_LOCK) pyproject.toml

test: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

lint: $(TEST_STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: $(TEST_STAMP)
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

# Ten trials per fault on one host (tests/chaos) and across test hosts in network namespaces
# (tests/hosts, as root); -s shows the recovery-time tables each suite prints.
chaos: $(TEST_STAMP)
	STASHHOG_CHAOS=full $(BIN)/python -m pytest tests/chaos tests/hosts -v -s

# Every benchmark side by side (bench/README.md), about 10 minutes: a summary table with the
# issue's goals and the peers' ratios, written to bench/results/. `make test` runs the same
# suite with --quick (tests/test_bench_quick.py).
bench: $(TEST_STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) $(LOCK_VENV) instance tests/artifacts
