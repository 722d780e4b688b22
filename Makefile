# The two commands a new user needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint format chaos bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -m stashhog.launcher

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

# Ten trials per fault on one host (tests/chaos) and across test hosts in network namespaces
# (tests/hosts, as root); -s shows the recovery-time tables each suite prints.
chaos: $(STAMP)
	STASHHOG_CHAOS=full $(BIN)/python -m pytest tests/chaos tests/hosts -v -s

bench: $(STAMP)
	$(BIN)/python -m bench.start_stop
	$(BIN)/python -m bench.log_throughput
	$(BIN)/python -m bench.memory
	$(BIN)/python -m bench.log_latency
	$(BIN)/python -m bench.viewers

clean:
	rm -rf $(VENV) instance tests/artifacts
