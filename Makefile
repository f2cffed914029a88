# Entry points. `make test` is what CI runs (through .ci/run).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.setup-stamp
SETUP_INPUTS := $(wildcard packages/*/pyproject.toml) requirements/constraints.txt scripts/setup.sh scripts/system-deps.sh
PYTEST_ARGS ?=

.PHONY: setup test lint bench bench-loader bench-corpus bench-chunking twin demo pretrain ablation-collapse dataset
.DEFAULT_GOAL := help

help:
	@echo "make setup   create .venv and install the packages (idempotent)"
	@echo "make test    setup + the whole test suite (prints the slowest tests)"
	@echo "make lint    ruff"
	@echo "make pretrain CONFIG=nano|tiny|base|large NGPU=N   torchrun on this node (CPU fallback); see README"
	@echo "make ablation-collapse   Lite vs EMA target on the demo corpus -> runs/ablation-collapse/"
	@echo "make demo    offline: twin -> Sentinel-2 corpus (data/demo) -> Nano trained on CPU (runs/demo) + plots"
	@echo "make dataset OSM=file.osm.pbf [SAMPLES_PER_CATEGORY=N DATES_PER_TILE=K WORKERS=N SCHEDULER=tcp://host:8786]"
	@echo "            sample -> build -> stats from Planetary Computer (PC_SDK_SUBSCRIPTION_KEY from the env),"
	@echo "            estimate printed first; CATALOG=twin does it offline (OSM default: West Oakland fixture)"
	@echo "make bench-loader   loader samples/s per worker vs raw read floor, full default set (needs make demo)"
	@echo "make bench-chunking random-crop read speed of inner chunk shapes (benchmarks/results/chunking_cpu.json)"
	@echo "make bench-corpus   corpus build on the twin: samples/min, CPU s/sample, bytes/sample, peak worker RSS"
	@echo "make twin    setup + serve the local Planetary Computer twin (every default-set source) for the demo samples until Ctrl-C"
	@echo "make bench   setup + CPU training-step benchmark of Nano and Base (benchmarks/results/model_cpu.json)"
	@echo "            + OSM streaming-pass benchmark (benchmarks/results/osm_extract.json)"

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
	$(PY) benchmarks/bench_osm.py

twin: setup
	$(VENV)/bin/olmoearth-twin serve $(TWIN_ARGS)

demo: setup
	$(PY) scripts/demo.py $(DEMO_ARGS)

CONFIG ?= nano
NGPU ?= 1
TORCHRUN_ARGS ?= --standalone
ARGS ?=
pretrain: setup
	$(VENV)/bin/torchrun $(TORCHRUN_ARGS) --nproc_per_node $(NGPU) -m olmoearth_model.cli train --config pipelines/$(CONFIG).yaml $(ARGS)

ablation-collapse: setup
	$(PY) scripts/ablation_collapse.py $(ABLATION_ARGS)

bench-loader: setup
	$(PY) benchmarks/bench_loader.py

bench-corpus: setup
	$(PY) benchmarks/bench_corpus.py

bench-chunking: setup
	$(PY) benchmarks/bench_chunking.py

# `make dataset`: OSM → samples → corpus (+ index) → stats under $(DATASET_DIR), Planetary Computer by default.
CATALOG ?= pc
OSM ?= $(if $(filter twin,$(CATALOG)),packages/olmoearth-twin/src/olmoearth_twin/fixtures/osm/West-Oakland.osm.bz2,)
SAMPLES_PER_CATEGORY ?= $(if $(filter twin,$(CATALOG)),1,10000)
DATES_PER_TILE ?= 1
WORKERS ?= 2
SCHEDULER ?=
MODALITIES ?= default
DATASET_DIR ?= data/dataset-$(CATALOG)
dataset: setup
	@test -n "$(OSM)" || { echo "make dataset: set OSM=path/to/region.osm.pbf (or CATALOG=twin)"; exit 2; }
	$(PY) scripts/dataset.py --osm $(OSM) --catalog $(CATALOG) --data $(DATASET_DIR) \
		--samples-per-category $(SAMPLES_PER_CATEGORY) --dates-per-tile $(DATES_PER_TILE) \
		--workers $(WORKERS) --modalities $(MODALITIES) \
		$(if $(SCHEDULER),--scheduler $(SCHEDULER),)
