# The two commands: `make demo` and `make test`. Both work on a fresh machine with Python 3.11+.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
export LEADROUTE_HOME ?= $(CURDIR)/data

.PHONY: demo test lint typecheck unit bench install clean-workspace

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required (set PYTHON=python3.11)")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

## Build the demo workspace if it is missing, show what it holds, then serve the routing endpoint
## (background) and the workbench (foreground); Ctrl-C stops both.
demo: $(STAMP)
	@test -f "$(LEADROUTE_HOME)/warehouse.duckdb" || $(BIN)/leadroute demo
	@$(BIN)/leadroute status
	@$(BIN)/leadroute serve & endpoint=$$!; trap 'kill $$endpoint 2>/dev/null' EXIT INT TERM; \
	  sleep 2; $(BIN)/leadroute app

## Lint, type-check and run the whole test suite.
test: lint typecheck unit

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest

## Run every benchmark (installs the benchmark-only baselines first) and write the figures into the
## README's table; `make bench BENCH_ARGS=--quick` runs small sizes in a few minutes and prints the table.
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python benchmarks/run_all.py $(BENCH_ARGS)

clean-workspace:
	rm -rf "$(LEADROUTE_HOME)"
