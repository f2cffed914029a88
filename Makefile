# Entry points. `make test` is what CI runs (through .ci/run).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.setup-stamp
SETUP_INPUTS := $(wildcard packages/*/pyproject.toml) requirements/constraints.txt scripts/setup.sh scripts/system-deps.sh
PYTEST_ARGS ?=

.PHONY: setup test lint bench twin demo
.DEFAULT_GOAL := help

help:
	@echo "make setup   create .venv and install the packages (idempotent)"
	@echo "make test    setup + the whole test suite (prints the slowest tests)"
	@echo "make lint    ruff"
	@echo "make demo    offline: twin -> Sentinel-2 corpus (data/demo) -> Nano trained on CPU (runs/demo) + plots"
	@echo "make twin    setup + serve the local Planetary Computer twin (STAC + SAS + blobs) until Ctrl-C"
	@echo "make bench   setup + CPU training-step benchmark of Nano and Base (benchmarks/results/model_cpu.json)"

setup: $(STAMP)

$(STAMP): $(SETUP_INPUTS)
	bash scripts/setup.sh
	@touch $@

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: setup
	$(PY) benchmarks/bench_model.py

twin: setup
	$(VENV)/bin/olmoearth-twin serve

demo: setup
	$(PY) scripts/demo.py $(DEMO_ARGS)
