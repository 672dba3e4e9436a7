"""tests/methods' tiny classifiers for the experiments' tests, and `run_main` for
experiments.explain_image's main() in-process."""

import os
import pathlib
import sys

import pytest
from absl import flags

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "methods"))


@pytest.fixture
def run_main(monkeypatch):
  """Parses explain_image's flags as the command line would (from their defaults: repeated
  flags accumulate over parses), runs its main(); resets the flags (and the XLA_FLAGS main()
  extends: salijax.cpu_convolutions) afterwards."""
  from experiments import explain_image  # noqa: PLC0415 - defines the flags it parses

  monkeypatch.setenv("XLA_FLAGS", os.environ.get("XLA_FLAGS", ""))

  def run(*args):
    flags.FLAGS.unparse_flags()
    explain_image.main(flags.FLAGS(["explain_image", *args]))
  yield run
  flags.FLAGS.unparse_flags()
