"""Lets the perturbation tests import the tiny classifiers of the method tests (tests/methods)."""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "methods"))
