# The two commands of the README: `make demo` (the main job) and `make test` (every test).
# Both need only Python 3.11+ and the package index; each makes its own virtualenv.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: test test-fast lint format clean demo

# Two workers, each with a Meltano system directory of its own (tests/conftest.py shares
# the tests out; docs/development.md says where the time goes).
test: $(VENV)/.installed
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

# The unit tests alone, in well under a minute: no Meltano, dbt, orchestrator, package
# build or package index (the tests marked `slow`).
test-fast: $(VENV)/.installed
	$(BIN)/python -m pytest -n 2 -m "not slow" -q $(PYTEST_ARGS)

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy tap_leadtrackr loaders/target-duckdb/leadtrackr_target_duckdb

format: $(VENV)/.installed
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Reinstalled whenever pyproject.toml changes.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=25.1"
	$(BIN)/python -m pip install --quiet -e . --group dev
	touch $@

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis transform/target transform/logs

# The main job: sandbox (or the real API with TAP_LEADTRACKR_API_KEY exported) -> Meltano
# -> output/*.duckdb, then a report. `make demo ARGS=--full-refresh`; see scripts/demo.py.
demo: $(VENV)/.demo-installed
	$(BIN)/python scripts/demo.py $(ARGS)

# The project, Meltano and the job's plugins (in .meltano/); again when one of these changes.
$(VENV)/.demo-installed: pyproject.toml meltano.yml loaders/target-duckdb/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=25.1"
	$(BIN)/python -m pip install --quiet -e . --group meltano
	$(BIN)/meltano --log-level=warning install --schedule daily-leads-to-warehouse
	touch $@
