# Stratum developer tasks. `make install` once, then `make test`, `make lint`, ...
# Every tool runs from the project's virtualenv; override it with `make VENV=path ...`.

VENV ?= .venv
PYTHON ?= python3
PY = $(VENV)/bin/python
PYTEST_ARGS ?=
# Test files run in parallel (pytest-xdist): the tests mostly wait on the servers and on the
# `stratum migrate` processes they start, so 4 workers keep the 2-core machine busy.
TEST_WORKERS ?= 4
# `make bench`: rows of the base data set (the 5M scenarios take 5x), runs per scenario (median),
# extra options for bench.run (BENCH_ARGS='--scenario mysql_pg pg_pg').
ROWS ?= 1000000
RUNS ?= 3
BENCH_ARGS ?=
# `make chaos`: SIGKILLs of `stratum migrate` at random moments, then exact checks
# (tests/support/chaos.py); the report goes to chaos/REPORT.md.
CHAOS_KILLS ?= 200
CHAOS_SEED ?= 1

# Written after a successful install; redone whenever pyproject.toml changes.
INSTALL_STAMP = $(VENV)/.installed

.DEFAULT_GOAL := help

.PHONY: help install quickstart test lint fmt bench bench-quick bench-clean chaos clean distclean

help:
	@echo "make install     create $(VENV) (if absent) and install stratum with the dev extras"
	@echo "make quickstart  the examples quickstart, medallion and features into embedded DuckDB files"
	@echo "make test        run the test suite (extra pytest options: PYTEST_ARGS='...')"
	@echo "make lint        ruff check, ruff format --check, mypy"
	@echo "make fmt         ruff format and ruff check --fix"
	@echo "make bench       the benchmark suite, ROWS=$(ROWS) RUNS=$(RUNS) (bench/README.md)"
	@echo "make bench-quick a subset at 100,000 rows, one run each"
	@echo "make bench-clean drop the benchmark's sbench_* databases and its cached data"
	@echo "make chaos       SIGKILL migrate CHAOS_KILLS=$(CHAOS_KILLS) times (seed $(CHAOS_SEED)), check the copy"
	@echo "make clean       remove caches and build output (distclean also removes $(VENV))"

install: $(INSTALL_STAMP)

$(INSTALL_STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --disable-pip-version-check -e '.[dev]'
	@touch $@

quickstart: install
	$(VENV)/bin/stratum migrate examples/quickstart.smql
	$(VENV)/bin/stratum migrate examples/medallion.smql
	$(VENV)/bin/stratum migrate examples/features.smql

test: install
	$(VENV)/bin/pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

fmt: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: install
	$(PY) -m bench.run --rows $(ROWS) --runs $(RUNS) $(BENCH_ARGS)

bench-quick: install
	$(PY) -m bench.run --rows 100000 --runs 1 --quick $(BENCH_ARGS)

bench-clean:
	$(PY) -m bench.generate --clean

chaos: install
	$(PY) -m tests.support.chaos --kills $(CHAOS_KILLS) --seed $(CHAOS_SEED) --report chaos/REPORT.md

clean:
	rm -rf build dist .pytest_cache .mypy_cache .ruff_cache .hypothesis .coverage htmlcov
	find . -path ./$(VENV) -prune -o -name '*.egg-info' -prune -exec rm -rf {} + \
		-o -name __pycache__ -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
