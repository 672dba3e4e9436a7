"""Lets the metric tests import the tiny classifiers of the method tests (tests/methods) and
the wrapped-model checks (tests/wrapping)."""

import pathlib
import sys

_TESTS = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(_TESTS / "methods"))
sys.path.insert(0, str(_TESTS / "wrapping"))
