"""Initialised salijax models shared by the tests of one process (the init of a
VGG draws 133M random numbers): never modify what `variables` returns."""

import functools

import jax

from salijax import models

NUM_CLASSES = 5


def randomized_batch_stats(batch_stats, seed: int = 1):
  """Like `batch_stats`: running means ~ N(0, 0.1), running variances ~ U(0.5, 1.5),
  so that inference-mode BatchNorm does something."""
  paths_and_leaves, tree = jax.tree_util.tree_flatten_with_path(batch_stats)
  keys = jax.random.split(jax.random.key(seed), len(paths_and_leaves))
  leaves = [0.1 * jax.random.normal(k, x.shape) if path[-1].key == "mean"
            else jax.random.uniform(k, x.shape, minval=0.5, maxval=1.5)
            for k, (path, x) in zip(keys, paths_and_leaves, strict=True)]
  return jax.tree_util.tree_unflatten(tree, leaves)


@functools.cache
def variables(arch: str, seed: int = 0, *, random_statistics: bool = False):
  """`models.init(models.create(arch, num_classes=NUM_CLASSES), key(seed), 32)`,
  with `randomized_batch_stats` if asked."""
  result = models.init(models.create(arch, num_classes=NUM_CLASSES), jax.random.key(seed), 32)
  if random_statistics and "batch_stats" in result:
    result = {**result, "batch_stats": randomized_batch_stats(result["batch_stats"])}
  return result


def flax_activation(module, variables, images, tap, train=False):
  """The output of the Flax module at `tap` (models.tap_path), read by Flax's own
  `capture_intermediates`: a reading of the activation independent of salijax's
  interception. With train=True, also the updated batch statistics."""
  path = models.tap_path(module, tap).split("/")
  out, state = module.apply(variables, images, train=train, capture_intermediates=True,
                            mutable=["intermediates", "batch_stats"] if train
                            else ["intermediates"])
  del out
  node = state["intermediates"]
  for name in path:
    node = node[name]
  (activation,) = node["__call__"]
  return activation
