# `make demo` and `make test` each set up .venv when needed (idempotent), then run. The set-up installs with
# requirements/constraints.txt, the versions the tests last passed with (`make constraints` regenerates it).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The CPU build of torch keeps the set-up small; override with TORCH_SPEC=torch for a CUDA build.
TORCH_SPEC ?= torch==2.13.0
CONSTRAINTS := requirements/constraints.txt
# Two workers (pytest-xdist), a test file per worker at a time: e2e tests spend much of their time waiting on
# drivers, servers and Ray, which the other worker fills. Each worker starts its own local Ray.
PYTEST := $(PY) -m pytest -q --durations=20 -n 2 --dist loadfile

.PHONY: setup demo test test-fast lint constraints clean cluster-demo

setup: $(STAMP)

$(STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c $(CONSTRAINTS) "$(TORCH_SPEC)" || $(PY) -m pip install -q -c $(CONSTRAINTS) torch
	$(PY) -m pip install -q -c $(CONSTRAINTS) -e ".[dev,bench]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/nas search experiments/digits_cnn.yaml

# The demo search on a throwaway cluster: PostgreSQL, an MLflow server, a Ray head + 2 nodes (own IPs as root).
cluster-demo: $(STAMP)
	$(PY) scripts/cluster.py demo

# Everything, slowest 20 tests listed (the suite's budget: 12 minutes on a 2-core CI machine).
test: lint
	$(PYTEST)

# The fast tests only (not `slow`: no Ray or MLflow end-to-end runs, no long fuzzing): under 3 minutes.
test-fast: lint
	$(PYTEST) -m "not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check nas tests benchmarks experiments scripts
	$(VENV)/bin/lint-imports

# Pin what this venv has (after `make test` passed): pip freeze, minus nas itself, local labels (+cpu) dropped.
constraints: $(STAMP)
	{ sed -n '1,3p' $(CONSTRAINTS); echo "# Generated $$(date -u +%F) on $$(uname -m), Python $$($(PY) -c 'import platform; print(platform.python_version())')."; \
	  $(PY) -m pip freeze --exclude-editable | grep -v '^nas==' | sed -E 's/^([A-Za-z0-9_.-]+)==([^+]+)[+].*$$/\1==\2/'; } > $(CONSTRAINTS).new
	mv $(CONSTRAINTS).new $(CONSTRAINTS)

clean:
	rm -rf $(VENV) .pytest_cache mlflow.db mlruns
