# mailpulse: two commands on a fresh machine with python3.
#   make run    start the service on an embedded SQLite database under ./var/
#   make test   install what the tests need, then lint, type-check and test
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NODE_STAMP := tests/compat/node/node_modules/.installed

.PHONY: run test lint typecheck pytest install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

$(NODE_STAMP): tests/compat/node/package.json
	cd tests/compat/node && npm install --no-audit --no-fund --silent
	touch $@

install: $(STAMP)

run: $(STAMP)
	$(BIN)/mailpulse migrate
	$(BIN)/mailpulse demo
	$(BIN)/mailpulse serve

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP) $(NODE_STAMP)
	$(BIN)/pytest -q

test: lint typecheck pytest

clean:
	rm -rf $(VENV) var tests/compat/node/node_modules
