# meet-telephony — `make test` is the test command, `make dev` the run command.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test lint typecheck pytest dev clean bench load

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# pytest exits 5 when it collects nothing; that is a failure here, as is any other non-zero code.
pytest: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

test: lint typecheck pytest

dev: $(STAMP)
	$(BIN)/meet-telephony dev $(DEV_ARGS)

# Benchmarks (bench/README.md): not part of `make test`; figures, never pass/fail on a timing.
# BENCH_ARGS e.g. "--temporal both" or "--quick"; sizes also as BENCH_* variables.
bench:
	$(BIN)/python -m bench $(BENCH_ARGS)

# Load test (bench/load.py): exits non-zero on any non-2xx answer or lost event. LOAD_ARGS e.g. "--temporal cluster".
load:
	$(BIN)/python -m bench.load $(LOAD_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis

# The whole-system chaos suite (docs/CHAOS.md): `make chaos SEED=7 ROOMS=6 STEPS=60 SEEDS=1`.
SEED ?= 1
SEEDS ?= 1
ROOMS ?= 5
STEPS ?= 40
.PHONY: chaos
chaos: $(STAMP)
	$(BIN)/python -m tests.chaos --seed $(SEED) --seeds $(SEEDS) --rooms $(ROOMS) --steps $(STEPS) $(CHAOS_ARGS)
