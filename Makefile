# Palermo — the two commands a newcomer needs are `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PKGS   := schemas policies protocol node broker palermo deploy

.PHONY: demo test lint imports typecheck pytest soak bench bench-quick fuzz install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/palermo demo

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

# Imports only go down the layers (DESIGN.md "Layout and layers"): the import-linter contracts in
# pyproject.toml; a broken one names the importing and the imported module.
imports: $(STAMP)
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy $(PKGS)

# pytest-xdist on both cores of the CI machine (every test is xdist-safe: random ports, its own
# tmp_path); the stateful shards start first (tests/conftest.py).
PYTEST_WORKERS ?= 2

pytest: $(STAMP)
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --cov --cov-report=term $(PYTEST_ARGS)

# The stateful federation test at length, on new random seeds (printed, to replay with
# PALERMO_STATEFUL_SEED): SOAK_SHARDS shards (two at a time, one per core) x SOAK_EXAMPLES
# examples x up to SOAK_STEPS steps, at least 2,000 steps, with broker and nats-server kills and
# the attacks as rules. Prints the counts of steps, invariant checks, kills and attacks at the end.
# An example stops early once hypothesis has drawn most of its 8 KiB of choices (about 30 steps
# here), and one shard's run has ended near 980 steps however many examples it was given, so the
# length comes from the number of shards and examples.
SOAK_SHARDS   ?= 4
SOAK_EXAMPLES ?= 20
SOAK_STEPS    ?= 40

soak: $(STAMP)
	PALERMO_STATEFUL_RANDOM=1 PALERMO_STATEFUL_SHARDS=$(SOAK_SHARDS) PALERMO_STATEFUL_MIN_STEPS=2000 \
	PALERMO_STATEFUL_EXAMPLES=$(SOAK_EXAMPLES) PALERMO_STATEFUL_STEPS=$(SOAK_STEPS) \
	  $(BIN)/python -m pytest -n 2 -p no:cacheprovider tests/stateful $(PYTEST_ARGS)

test: lint imports typecheck pytest

BENCHES := envelope policy broker priority

# Each benchmark measures its peer or raw floor in the same run; figures go to docs/benchmarks.md.
bench: $(STAMP)
	@for b in $(BENCHES); do echo "== benchmarks/$$b.py"; $(BIN)/python benchmarks/$$b.py || exit 1; done

bench-quick: $(STAMP)
	@for b in $(BENCHES); do echo "== benchmarks/$$b.py --quick"; $(BIN)/python benchmarks/$$b.py --quick || exit 1; done

FUZZ_SECONDS ?= 300
FUZZ_DIR     ?= .palermo/fuzz
FUZZ_TARGETS := envelope report

$(VENV)/.fuzz-installed: pyproject.toml | $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,fuzz]'
	touch $@

# Coverage-guided atheris runs, FUZZ_SECONDS per target (fuzz/). New inputs grow
# $(FUZZ_DIR)/corpus/<target>; a crash, a hang over 10 s or 2 GiB of memory stops the run with
# the input written to $(FUZZ_DIR)/crashes/. Seeds: fuzz/corpus/ (python -m fuzz.seeds).
fuzz: $(VENV)/.fuzz-installed
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(FUZZ_DIR)/corpus/$$t $(FUZZ_DIR)/crashes; \
	  echo "== fuzz/$${t}_target.py for $(FUZZ_SECONDS) s"; \
	  $(BIN)/python -m fuzz.$${t}_target $(FUZZ_DIR)/corpus/$$t fuzz/corpus/$$t \
	    -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
	    -artifact_prefix=$(FUZZ_DIR)/crashes/$$t- || exit 1; \
	done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis .coverage
