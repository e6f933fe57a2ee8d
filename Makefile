# Set-up and everyday targets. Everything installs into .venv; torch's CPU build is pinned first so that no
# CUDA build is pulled in (pyproject keeps a range).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_PIN := torch==2.13.0
DATA ?= ../shared/data
PYTEST_WORKERS ?= 2

.PHONY: setup demo test test-fast lint bench clean

$(BIN)/nas: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check $(TORCH_PIN)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[all,dev]'
	touch $@

setup: $(BIN)/nas

## The main job: what the foundation can do end to end today (spaces, exact costs, latency on this machine).
demo: setup
	$(BIN)/nas spaces
	$(BIN)/nas space show resnet20-pooling --input-shape 1,28,28
	$(BIN)/nas space sample nb201 --n 3 --seed 0
	$(BIN)/nas space measure macro-cnn --input-shape 1,28,28 --n 3 --seed 0 --backend torch,onnxruntime --runs 100

## The test suite (what CI runs), in parallel; NAS_DATA_DIR points the data-backed tests at the shared tables.
test: setup
	NAS_DATA_DIR=$(DATA) $(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist worksteal -q

## The same without the exhaustive (slow) checks.
test-fast: setup
	NAS_DATA_DIR=$(DATA) $(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist worksteal -q -m "not slow"

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: setup
	$(BIN)/python benchmarks/cost_throughput.py

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .ruff_cache .mypy_cache
