"""Shared pytest fixtures."""

import os

import pytest


@pytest.fixture(scope="session")
def torch():
  """The CPU torch used as a reference: skipped locally if absent, required in CI."""
  if os.environ.get("CI"):
    import torch as torch_module  # noqa: PLC0415 - CI must have it: fail, not skip.
    return torch_module
  return pytest.importorskip("torch")
