# The two commands of the README: `make run` (the main job) and `make test`.
PYTHON ?= python3
VENV ?= .venv
WORKDIR ?= workdir/benchmark
BIN := $(VENV)/bin

.PHONY: run test test-fast test-other-isa install

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip

# One marker per extra installed: the benchmark's packages (the main job), or the test extra
# (the benchmark's packages too, pytest, torch + torchvision, captum, zennit, Quantus, PAIR saliency,
# lime, Haiku, Equinox, flaxmodels, jimm).
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
	$(BIN)/python -m pytest -n 2 --dist loadgroup tests

# The suite without the tests marked slow (whole benchmarks, torch parity, third-party models).
test-fast: $(VENV)/.installed-test
	$(BIN)/python -m pytest -n 2 --dist loadgroup -m "not slow" tests

# The numerical tests of methods and metrics again (those not marked slow), as XLA:CPU
# compiles them for an older instruction set (other kernels, other float32 rounding): a
# tolerance that holds on one CPU only fails here. Its own compilation cache, so no program compiled for another ISA is reused.
ISA ?= SSE4_2
test-other-isa: $(VENV)/.installed-test
	XLA_FLAGS="--xla_cpu_max_isa=$(ISA)" SALIJAX_TEST_JAX_CACHE="$${TMPDIR:-/tmp}/salijax_test_jax_cache_$(ISA)" \
	  $(BIN)/python -m pytest -n 2 --dist loadgroup -m "not slow" tests/methods tests/metrics tests/wrapping
