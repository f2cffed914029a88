# Entry points. `make test` is what CI runs (through .ci/run).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.setup-stamp
SETUP_INPUTS := $(wildcard packages/*/pyproject.toml) requirements/constraints.txt scripts/setup.sh scripts/system-deps.sh
PYTEST_ARGS ?=

.PHONY: setup test test-fast lint bench bench-gpu bench-loader bench-feed bench-corpus bench-chunking twin demo pretrain ablation-collapse ablations dataset bench-osm bench-network
.DEFAULT_GOAL := help

help:
	@echo "make setup   create .venv and install the packages (idempotent)"
	@echo "make test    setup + the whole test suite (prints the slowest tests)"
	@echo "make test-fast   the fast tier: no twin/PostgreSQL, no slow tests, fake corpora (~1.5 min on 2 cores)"
	@echo "make lint    ruff"
	@echo "make pretrain CONFIG=nano|tiny|base|large NGPU=N   torchrun on this node (CPU fallback); see README"
	@echo "make ablation-collapse   Lite vs EMA target on the demo corpus -> runs/ablation-collapse/"
	@echo "make ablations   probe scores of Lite / EMA / random masking / no contrastive / random init (benchmarks/results/ablations.json)"
	@echo "make demo    offline: twin -> corpus of every default modality (data/demo) -> Nano trained on CPU (runs/demo) + plots"
	@echo "            DEMO_ARGS=\"--help\" lists its options; other options get their own folders"
	@echo "make dataset OSM=file.osm.pbf [SAMPLES_PER_CATEGORY=N DATES_PER_TILE=K WORKERS=N SCHEDULER=tcp://host:8786]"
	@echo "            sample -> build -> stats from Planetary Computer (PC_SDK_SUBSCRIPTION_KEY from the env),"
	@echo "            estimate printed first; CATALOG=twin does it offline (OSM default: West Oakland fixture)"
	@echo "make bench-gpu  GPU trainer check: Base/Large bf16 steps, compile, FSDP2, loader feed (BENCH_GPU_ARGS=--dry-run: CPU)"
	@echo "make bench-loader   loader samples/s per worker vs raw read floor, full default set (needs make demo)"
	@echo "make bench-feed     wait at each epoch start: next epoch's loader started early vs at the end"
	@echo "make bench-chunking random-crop read speed of inner chunk shapes (benchmarks/results/chunking_cpu.json)"
	@echo "make bench-corpus   corpus build on the twin: samples/min, CPU s/sample, bytes/sample, peak worker RSS"
	@echo "make bench-network  materialise wall/requests per sample at 0-100 ms per request (NET=wan: a slow twin)"
	@echo "make bench-osm      OSM pass el/s (today's vs batched, 1 and 2 workers), floors, memory, planet estimate"
	@echo "make twin    setup + serve the local Planetary Computer twin (every default-set source) for the demo samples until Ctrl-C"
	@echo "make bench   setup + CPU training-step benchmark of Nano and Base (benchmarks/results/model_cpu.json)"
	@echo "            + OSM streaming-pass benchmark (benchmarks/results/osm_extract.json)"

setup: $(STAMP)

$(STAMP): $(SETUP_INPUTS)
	bash scripts/setup.sh
	@touch $@

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

# The fast tier: tests marked `twin` (olmoearth_data.testing_plugin marks every test using the twin
# fixture) or `slow` are left out; trainer tests run on fake corpora (olmoearth_data.testing). Its test
# files are split into FAST_SHARDS processes run side by side, one torch/OpenMP thread each (on 2
# cores: 1.6 min vs 2.6 for one process; shard 0 prints as it goes, the others when done). No `setup`
# prerequisite: setup also installs PostgreSQL (scripts/system-deps.sh), which this tier never
# starts; it needs the .venv only.
FAST_SHARDS ?= 2
FAST_PYTEST := OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(PY) -m pytest -m "not twin and not slow"
test-fast:
	@test -x $(PY) || { echo "make test-fast: no $(VENV); run make setup first" >&2; exit 2; }
	@test -z "$$(find $(SETUP_INPUTS) -newer $(STAMP) 2>/dev/null)" || echo "make test-fast: $(VENV) may be stale (make setup)" >&2
	@logs=$$(mktemp -d); pids=""; trap 'kill $$pids 2>/dev/null; rm -rf "$$logs"' EXIT; \
	for i in $$(seq 1 $$(($(FAST_SHARDS) - 1))); do \
	  $(FAST_PYTEST) -p no:cacheprovider --test-shard $$i/$(FAST_SHARDS) $(PYTEST_ARGS) > "$$logs/$$i.log" 2>&1 & pids="$$pids $$!"; \
	done; \
	echo "make test-fast: shard 0/$(FAST_SHARDS) below, $$(($(FAST_SHARDS) - 1)) more in the background (printed at the end)"; \
	$(FAST_PYTEST) --test-shard 0/$(FAST_SHARDS) $(PYTEST_ARGS); codes=$$?; \
	for p in $$pids; do wait $$p; codes="$$codes $$?"; done; pids=""; \
	for i in $$(seq 1 $$(($(FAST_SHARDS) - 1))); do echo "==== test-fast shard $$i/$(FAST_SHARDS) ===="; cat "$$logs/$$i.log"; done; \
	for c in $$codes; do [ $$c = 0 ] || [ $$c = 5 ] || exit $$c; done  # 5: no test of the shard selected

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
# NGPU=1 runs one plain process (no torchrun: an error is one line, SIGTERM checkpoints and exits 0);
# on a machine without a GPU that is the CPU fallback (loader workers capped to the cores, a GPU-sized
# batch refused in one line naming data.global_batch; pass e.g. ARGS="data.global_batch=8").
PRETRAIN_LAUNCH = $(if $(filter 1,$(NGPU)),$(PY) -m,$(VENV)/bin/torchrun $(TORCHRUN_ARGS) --nproc_per_node $(NGPU) -m)
pretrain: setup
	$(PRETRAIN_LAUNCH) olmoearth_model.cli train --config pipelines/$(CONFIG).yaml $(ARGS)

ablation-collapse: setup
	$(PY) scripts/ablation_collapse.py $(ABLATION_ARGS)

# The paper's ablations measured by probes (docs/evaluation.md): Lite, EMA, random masking, no
# contrastive term, random init; train split -> validation split of the demo corpus, mean ± std over seeds.
ablations: setup
	$(PY) scripts/ablations.py $(ABLATION_ARGS)

# GPU check (Base and Large bf16 steps, compile on/off, fused AdamW, FSDP2, loader feed) ->
# benchmarks/results/gpu_<card>.json. BENCH_GPU_ARGS=--dry-run runs it on the CPU at tiny sizes (CI does).
BENCH_GPU_ARGS ?=
bench-gpu: setup
	$(PY) benchmarks/bench_gpu.py $(BENCH_GPU_ARGS)

bench-loader: setup
	$(PY) benchmarks/bench_loader.py

# `make bench-feed`: the wait at each epoch's start, next loader started early vs at the end (feed_epochs_cpu.json).
bench-feed: setup
	$(PY) benchmarks/bench_feed_epochs.py

bench-corpus: setup
	$(PY) benchmarks/bench_corpus.py

bench-chunking: setup
	$(PY) benchmarks/bench_chunking.py

bench-osm: setup
	$(PY) benchmarks/bench_osm.py $(BENCH_OSM_ARGS)

# `make bench-network`: materialisation vs per-request latency on the twin (benchmarks/results/network_cpu.json).
bench-network: setup
	$(PY) benchmarks/bench_network.py $(BENCH_NETWORK_ARGS)

# NET=wan|far: the twin started by `make demo`, `make twin` and `make dataset CATALOG=twin` imposes that
# network profile (olmoearth_twin.servers.net.NET_PROFILES) on its STAC API, blob and SAS servers.
NET ?=
ifneq ($(NET),)
export OLMOEARTH_TWIN_NET := $(NET)
endif

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
