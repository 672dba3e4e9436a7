"""Fixtures of the training tests: a tiny config on a tiny synthetic dataset, and a run of it."""

import fcntl
import json
import os
from collections.abc import Callable

import ml_collections
import pytest

from experiments.configs import train as train_config
from salijax.train import loop


@pytest.fixture(scope="session")
def make_tiny_config(tmp_path_factory) -> Callable[[], ml_collections.ConfigDict]:
  """Returns a factory of fresh tiny configs sharing one TFDS data dir (built once).

  ResNet18 at 32 px on 48 train / 20 test synthetic images, batch 16: 3 steps
  per epoch, 2 epochs; logs at steps 3, 5, 6, checkpoints at 2, 3, 4, 6.
  """
  data_dir = tmp_path_factory.mktemp("tfds")

  def make() -> ml_collections.ConfigDict:
    config = train_config.get_config()
    config.synthetic = {"image_size": 32, "num_train": 48, "num_test": 20, "seed": 0}
    config.data_dir = str(data_dir)
    config.image_size = 32
    config.batch_size = 16
    config.eval_batch_size = 16  # 2 eval batches, the second with 12 padded rows.
    config.num_epochs = 2
    config.warmup_epochs = 0.5
    config.log_every_steps = 5
    config.checkpoint_every_steps = 2
    config.progress_bar = False
    return config

  return make


@pytest.fixture
def tiny_config(make_tiny_config) -> ml_collections.ConfigDict:
  return make_tiny_config()


@pytest.fixture(scope="session")
def reference_run(make_tiny_config, tmp_path_factory):
  """An uninterrupted run of the tiny config: (config, workdir, results).

  Under pytest-xdist the workers share one run (the first to take the lock
  trains, the others read its results). Tests must not write to its workdir
  (copy it first).
  """
  config = make_tiny_config()
  shared = tmp_path_factory.getbasetemp()
  if os.environ.get("PYTEST_XDIST_WORKER"):
    shared = shared.parent  # The workers' common temporary directory.
  workdir = shared / "reference_run"
  with open(shared / "reference_run.lock", "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    results_path = workdir / "results.json"
    if results_path.exists():
      return config, workdir, json.loads(results_path.read_text())
    return config, workdir, loop.train_and_evaluate(config, workdir)
