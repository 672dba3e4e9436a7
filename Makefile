# The two commands of the README: `make run` (the main job) and `make test`.
PYTHON ?= python3
VENV ?= .venv
WORKDIR ?= workdir/benchmark
BIN := $(VENV)/bin

.PHONY: run test install

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip

# The package alone (the main job), or with the test extra (pytest, torch CPU, captum).
$(VENV)/.installed: $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/python -m pip install -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/python -m pip install -e ".[test]"
	touch $@

install: $(VENV)/.installed-test

run: $(VENV)/.installed
	$(BIN)/python -m experiments.benchmark --config=experiments/configs/benchmark.py --workdir=$(WORKDIR)

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest -n 2 tests
