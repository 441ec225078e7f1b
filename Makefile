# Palermo — the two commands a newcomer needs are `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PKGS   := schemas policies protocol node broker palermo deploy

.PHONY: demo test lint imports typecheck pytest soak bench bench-quick fuzz install clean browser \
        screenshots

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
# tmp_path); the stateful shards start first (tests/conftest.py). --dist loadgroup: tests marked
# xdist_group("name") run on one worker (the console's browser tests share one live federation
# and one Chromium); every other test is handed out as before.
PYTEST_WORKERS ?= 2

pytest: $(STAMP) browser
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadgroup --cov --cov-report=term $(PYTEST_ARGS)

# The officer console's browser tests drive Debian's Chromium through Debian's chromedriver
# (tests/console/browser.py), never a browser downloaded by a test tool. Installed here when
# missing and we are root (a fresh CI container); otherwise a message says what to install.
CHROMIUM_BINS := /usr/bin/chromium /usr/bin/chromedriver

browser:
	@missing=; for f in $(CHROMIUM_BINS); do [ -x $$f ] || missing="$$missing $$f"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian's chromium and chromium-driver for the console's browser tests"; \
	    { DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	        chromium chromium-driver >/dev/null; } || { \
	      echo "apt-get could not install chromium and chromium-driver (its message is above);" \
	        "the console's browser tests need$$missing" >&2; exit 1; }; \
	    for f in $(CHROMIUM_BINS); do [ -x $$f ] || { \
	      echo "$$f is still missing after installing chromium and chromium-driver (Ubuntu's" \
	        "packages of these names only install snap wrappers): run make test on Debian," \
	        "or in a Debian container" >&2; exit 1; }; done; \
	  else \
	    echo "The console's browser tests need$$missing: run" \
	      "'sudo apt-get install chromium chromium-driver' (Debian), then make test again." >&2; \
	    exit 1; \
	  fi; \
	fi

# The console screenshots in docs/console.md: the browser tests write them to build/screenshots/
# (inbox, report view with its route map, compose preview, release queue); this refreshes the
# committed copies in docs/img/console/.
screenshots: $(STAMP) browser
	rm -rf build/screenshots
	$(BIN)/python -m pytest -p no:cacheprovider tests/console/test_browser_workflow.py $(PYTEST_ARGS)
	mkdir -p docs/img/console
	cp build/screenshots/*.png docs/img/console/

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
