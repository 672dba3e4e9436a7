"""Test helper: a training workdir holding a random ResNet18 at 32 px (no training)."""

import pathlib

import jax
import numpy as np

from experiments.configs import train as train_config
from salijax import models
from salijax.train import checkpointing
from salijax.train import workdir as workdir_lib

CLASS_NAMES = ("circle", "square", "star")


def random_variables(module, seed: int):
  """Random variables of `module` (numpy: faster than an eager `models.init` of a ResNet)."""
  rng = np.random.default_rng(seed)

  def leaf(path, shape):
    name = path[-1].key
    if name == "kernel":
      return rng.normal(0, (2 / np.prod(shape.shape[:-1])) ** 0.5, shape.shape).astype(np.float32)
    return np.full(shape.shape, 1.0 if name in ("scale", "var") else 0.0, np.float32)

  return jax.tree_util.tree_map_with_path(
      leaf, jax.eval_shape(lambda: models.init(module, jax.random.key(0), 32)))


def make_tiny_workdir(workdir: pathlib.Path) -> None:
  """A training workdir (run.json + a best checkpoint) of a random ResNet18 at 32 px."""
  config = train_config.get_config()
  config.image_size = 32
  config.crop_fraction = 0.75
  module = models.create(config.model, num_classes=len(CLASS_NAMES))
  variables = random_variables(module, seed=1)
  workdir_lib.write_run_record(workdir, config, num_classes=len(CLASS_NAMES),
                               class_names=list(CLASS_NAMES), steps_per_epoch=1)
  checkpoints = checkpointing.Checkpoints(workdir)
  checkpoints.save_best(1, variables, accuracy=0.5)
  checkpoints.close()
