# The two commands of the README: `make run` (the main job) and `make test`.
PYTHON ?= python3
VENV ?= .venv
WORKDIR ?= workdir/benchmark
BIN := $(VENV)/bin

.PHONY: run test install

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip

# One marker per extra installed: the benchmark's packages (the main job), or the test extra
# (the benchmark's packages too, pytest, torch CPU, captum, Haiku, Equinox, flaxmodels).
$(VENV)/.installed-benchmark: $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/python -m pip install -e ".[benchmark]"
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed-benchmark
	$(BIN)/python -m pip install -e ".[test]"
	touch $@

install: $(VENV)/.installed-test

run: $(VENV)/.installed-benchmark
	$(BIN)/python -m experiments.benchmark --config=experiments/configs/benchmark.py --workdir=$(WORKDIR)

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest -n 2 tests
