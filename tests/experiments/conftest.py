"""tests/methods' tiny classifiers for the experiments' tests."""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "methods"))
