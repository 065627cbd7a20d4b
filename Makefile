PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint typecheck bench clean

$(BIN)/maslow: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $(BIN)/maslow

demo: $(BIN)/maslow
	PATH="$(CURDIR)/$(BIN):$$PATH" bash scripts/demo.sh

lint: $(BIN)/maslow
	$(BIN)/ruff check src tests benchmarks

typecheck: $(BIN)/maslow
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/pytest -m "not slow and not gpu"

bench: $(BIN)/maslow
	$(BIN)/python benchmarks/io_bench.py

clean:
	rm -rf $(VENV) demo-out .pytest_cache .mypy_cache .ruff_cache
