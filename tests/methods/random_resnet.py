"""A salijax ResNet18 with random weights, BatchNorm parameters and statistics, for tests.

Drawn with numpy into the shapes of `models.init` (compiling the initialiser
would take longer than the tests): kernels He normal (fan in), BatchNorm
scales and variances U(0.5, 1.5), biases and means 0.1 N(0, 1). Test it at
80 px, not 64: XLA:CPU runs ResNet18 at 40-64 px many times slower.
"""

import jax
import jax.numpy as jnp
import numpy as np

from salijax import models


def random_resnet18(size: int, num_classes: int = 5, fc_scale: float = 1.0):
  """(module, variables) of a ResNet18 for size x size images; `fc_scale` multiplies the last
  layer's kernel (He normal logits reach ~100; 0.05 brings them to a few units)."""
  module = models.create("resnet18", num_classes=num_classes)
  shapes = jax.eval_shape(lambda key: models.init(module, key, image_size=size),
                          jax.random.key(0))
  rng = np.random.default_rng(0)

  def draw(path, leaf):
    name = path[-1].key
    if name == "kernel":  # He normal, fan in
      values = rng.normal(size=leaf.shape) * np.sqrt(2.0 / np.prod(leaf.shape[:-1]))
      if path[-2].key == "fc":
        values = values * fc_scale
    elif name in ("scale", "var"):
      values = rng.uniform(0.5, 1.5, size=leaf.shape)
    else:  # bias, mean
      values = 0.1 * rng.normal(size=leaf.shape)
    return jnp.asarray(values, leaf.dtype)

  return module, jax.tree_util.tree_map_with_path(draw, shapes)
