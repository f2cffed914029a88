# Entry points. `make test` is what CI runs (through .ci/run).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.setup-stamp
SETUP_INPUTS := $(wildcard packages/*/pyproject.toml) requirements/constraints.txt scripts/setup.sh scripts/system-deps.sh
PYTEST_ARGS ?=

.PHONY: setup test lint
.DEFAULT_GOAL := help

help:
	@echo "make setup   create .venv and install the packages (idempotent)"
	@echo "make test    setup + the whole test suite (prints the slowest tests)"
	@echo "make lint    ruff"

setup: $(STAMP)

$(STAMP): $(SETUP_INPUTS)
	bash scripts/setup.sh
	@touch $@

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
