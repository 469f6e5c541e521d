# `make demo` and `make test` each set up .venv when needed (idempotent), then run.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The CPU build of torch keeps the set-up small; override with TORCH_SPEC=torch for a CUDA build.
TORCH_SPEC ?= torch==2.13.0

.PHONY: setup demo test lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)" || $(PY) -m pip install -q torch
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/nas search experiments/digits_cnn.yaml

test: $(STAMP)
	$(VENV)/bin/ruff check nas tests benchmarks experiments
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check nas tests benchmarks experiments

clean:
	rm -rf $(VENV) .pytest_cache mlflow.db mlruns
