# hotline12348 — two commands do everything on a fresh Debian 12 machine (as root):
#   make run    set up and start the hotline on the embedded default (SQLite in var/)
#   make test   set up with dev tools and run lint, types and the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOTLINE := $(BIN)/hotline

.PHONY: run test system system-dev venv dev lint typecheck pytest db flows-check clean

run: system venv db flows-check
	$(HOTLINE) serve

test: system-dev dev lint typecheck pytest

system:
	@bash scripts/system-packages.sh

system-dev:
	@HOTLINE_DEV=1 bash scripts/system-packages.sh

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e .
	@touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

venv: $(VENV)/.installed

dev: $(VENV)/.installed-dev

db: venv
	$(HOTLINE) db upgrade
	$(HOTLINE) db seed

flows-check: venv
	$(HOTLINE) flows check

lint: dev
	$(BIN)/ruff check hotline agent_console tests bench

typecheck: dev
	$(BIN)/mypy

pytest: dev
	$(BIN)/pytest -q -p no:cacheprovider --durations=15

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache .hypothesis
