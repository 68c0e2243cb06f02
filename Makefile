# Two commands on a fresh machine:  `make run`  and  `make test`.
VENV   ?= .venv
PYTHON ?= python3
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed-$(shell sha256sum pyproject.toml | cut -c1-12)

.PHONY: run test lint bench

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); \
	  echo "error: '$(PYTHON) -m venv' failed. On Debian/Ubuntu install it: sudo apt-get install python3-venv"; exit 2; }
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

run: $(STAMP)            ## the nightly job, offline, on the embedded data in data/raw
	$(BIN)/opendata run

lint: $(STAMP)
	$(BIN)/ruff check opendata flows tests $(wildcard scripts benchmarks)
	$(BIN)/mypy opendata flows

test: lint               ## lint, type check and the whole test suite
	$(BIN)/pytest -q

bench: $(STAMP)          ## one table: stages, rows/s, peak RSS, vs. frictionless (30 k–3 M rows, synthetic)
	$(BIN)/python benchmarks/bench.py
