PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint typecheck bench clean

# the C kernels (src/maslow/_native/*.c) are compiled by the editable install: a changed source reinstalls
$(BIN)/maslow: pyproject.toml setup.py $(wildcard src/maslow/_native/*.c src/maslow/_native/*.h)
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $(BIN)/maslow

# the demo also shows training (torch) and tuning/tracking/ONNX (models extra): installed when available; the
# steps that need a missing extra say so and are skipped
$(VENV)/.demo-extras: $(BIN)/maslow
	$(BIN)/pip install -q -e '.[dev,models]' || echo "maslow: extra 'models' not installed; its demo steps are skipped"
	$(BIN)/pip install -q -e '.[torch]' || echo "maslow: extra 'torch' not installed; its demo steps are skipped"
	@touch $@

demo: $(VENV)/.demo-extras
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
