# mailpulse: two commands on a fresh machine with python3.
#   make run    install what the service needs, then start it on SQLite under ./var/
#   make test   install what the tests need too, then lint, type-check and test
# Each has its own stamp, so switching between them installs only what is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev
NODE_STAMP := tests/compat/node/node_modules/.installed

.PHONY: run test lint typecheck pytest install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# the service's runtime dependencies only (no test or lint tools)
$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

# the development extras too (pytest, mypy, ruff, the SendPulse SDKs the tests drive)
$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(RUN_STAMP)

$(NODE_STAMP): tests/compat/node/package.json
	cd tests/compat/node && npm install --no-audit --no-fund --silent
	touch $@

install: $(DEV_STAMP)

run: $(RUN_STAMP)
	$(BIN)/mailpulse migrate
	$(BIN)/mailpulse demo
	$(BIN)/mailpulse serve

lint: $(DEV_STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(DEV_STAMP)
	$(BIN)/mypy

pytest: $(DEV_STAMP) $(NODE_STAMP)
	$(BIN)/pytest -q

test: lint typecheck pytest

clean:
	rm -rf $(VENV) var tests/compat/node/node_modules
