# webclip: `make demo` runs everything on the embedded sample web; `make test` runs the suite.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
RUN    ?= runs/demo
CONFIG ?= configs/demo.json
STAMP  := $(VENV)/.installed
WEBCLIP := $(BIN)/webclip

.PHONY: install demo ablation crawl curate shards train eval queries bench test fuzz soak lint clean

install: $(STAMP)

# torch first, pinned, so nothing pulls a CUDA build; then the package with every extra.
$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON)"; exit 2; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e .[dev]
	touch $(STAMP)

demo: install
	$(WEBCLIP) demo --run $(RUN) --config $(CONFIG)

# The balancing ablation in its own larger sample web (configs/ablation.json; see README for the time it takes).
ABLATION_RUN    ?= runs/ablation
ABLATION_CONFIG ?= configs/ablation.json
ablation: install
	$(WEBCLIP) ablation --run $(ABLATION_RUN) --config $(ABLATION_CONFIG)

crawl: install
	$(WEBCLIP) crawl --run $(RUN) --config $(CONFIG) $(if $(SEEDS),--seeds-file $(SEEDS))

queries: install
	$(WEBCLIP) queries --run $(RUN) --config $(CONFIG)

curate: install
	$(WEBCLIP) curate --run $(RUN) --config $(CONFIG)

shards: curate
	$(WEBCLIP) shards --run $(RUN) --config $(CONFIG)

train: install
	$(WEBCLIP) train --run $(RUN) --config $(CONFIG)

eval: install
	$(WEBCLIP) eval --run $(RUN) --config $(CONFIG) $(if $(CKPT),--checkpoint $(CKPT))

bench: install
	$(BIN)/python -m bench
	$(BIN)/python -m bench.launcher_memory
	$(BIN)/python -m bench.big_domain

# pytest exits 5 when it collects no test: a layout mistake, never a pass.
test: install
	$(BIN)/python -m pytest --durations=15 tests; rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected: failing"; exit 1; fi; exit $$rc

# Soak: crawl + curate + shards over a generated hostile web (64 loopback hosts, 52,100 pages; tens of minutes).
soak: install
	$(BIN)/python -m bench.soak --out $(or $(SOAK_OUT),runs/soak)

# The fuzz tests with many more generated examples than make test runs (minutes).
fuzz: install
	WEBCLIP_FUZZ_EXAMPLES=$${WEBCLIP_FUZZ_EXAMPLES:-2000} $(BIN)/python -m pytest -q -k fuzz tests

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy webclip dedupe

clean:
	rm -rf runs bench/out .pytest_cache .ruff_cache .mypy_cache build dist *.egg-info
