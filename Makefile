# The two commands of the README: `make run` (the main job) and `make test`.
PYTHON ?= python3
VENV ?= .venv
WORKDIR ?= workdir/benchmark
BIN := $(VENV)/bin

.PHONY: run test install

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip

$(VENV)/.installed: $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/python -m pip install -e ".[test]"
	touch $@

install: $(VENV)/.installed

run: $(VENV)/.installed
	$(BIN)/python -m experiments.benchmark --config=experiments/configs/benchmark.py --workdir=$(WORKDIR)

test: $(VENV)/.installed
	$(BIN)/python -m pytest -n 2 tests
