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

## The main job: a real search on the embedded digits data (accuracy against MACs, training on a local Ray), ending
## with the Pareto front, a report and the best model exported; run again, it resumes (or just re-reads) the run.
demo: setup
	$(BIN)/nas search experiments/quickstart.yaml --out runs $$(test -f runs/quickstart/config.yaml && echo --resume)

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
