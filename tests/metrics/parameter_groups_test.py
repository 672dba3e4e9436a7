"""Tests of salijax.metrics.parameter_groups: the top-level groups of any Classifier's variables,
in the order the forward pass reads them (salijax's own models: parameter_randomization_test.py)."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import pytest
import wrapped_checks
import wrapped_models
from flax import nnx

import salijax
from salijax.metrics.parameter_groups import parameter_groups

IMAGES = wrapped_models.smooth_images(0, batch=2)


def leaf_paths(tree) -> list[tuple]:
  """Each leaf's path as (dict key | sequence index, ...)."""
  return [tuple(getattr(entry, "key", getattr(entry, "idx", None)) for entry in path)
          for path, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]


def test_linen_groups_are_the_top_level_modules_in_forward_order_with_their_statistics():
  clf = wrapped_models.linen_classifier()
  groups = parameter_groups(clf, IMAGES)
  # The flattened leaves are sorted by name (a_norm, b_head, ...): only a trace gives this order.
  assert groups.names == wrapped_models.LINEN_BLOCKS
  paths = leaf_paths(clf.variables)
  assert groups.of_leaf == tuple(path[1] for path in paths)  # (collection, module, name)
  assert groups.state == tuple(path[0] == "batch_stats" for path in paths)


def test_haiku_state_joins_its_module():
  clf = wrapped_models.haiku_classifier()
  groups = parameter_groups(clf, IMAGES)
  assert groups.names == wrapped_models.HAIKU_BLOCKS
  paths = leaf_paths(clf.variables)  # (0, "stem", "w"), (1, "norm/~/mean_ema", "average")
  assert groups.of_leaf == tuple(path[1].split("/~/")[0] for path in paths)
  assert groups.state == tuple(path[0] == 1 for path in paths)
  assert sum(groups.state) == 6  # mean and variance: average, hidden, counter


def test_equinox_groups_are_attributes_in_forward_order():
  clf = wrapped_models.equinox_classifier()
  groups = parameter_groups(clf, IMAGES)
  assert groups.names == wrapped_models.EQUINOX_BLOCKS
  assert groups.of_leaf == ("conv", "head", "head", "stem", "gate")  # the fields' order
  assert not any(groups.state)


def test_levels_every_leaf_shares_are_skipped():
  eqx = wrapped_checks.extra_module("equinox")
  keys = jax.random.split(jax.random.key(0), 3)
  sequential = eqx.nn.Sequential([
      eqx.nn.Conv2d(3, 4, 3, key=keys[0]), eqx.nn.Lambda(jax.nn.relu),
      eqx.nn.Conv2d(4, 4, 3, key=keys[1]), eqx.nn.Lambda(lambda x: x.mean((1, 2))),
      eqx.nn.Linear(4, 3, key=keys[2])])
  clf = salijax.wrap(sequential, preprocess=salijax.wrapping.Preprocess(channels_first=True))
  assert parameter_groups(clf, IMAGES).names == ("layers.4", "layers.2", "layers.0")

  class Outer(nn.Module):
    @nn.compact
    def __call__(self, x):
      return wrapped_models.LinenRegionCNN(name="backbone")(x)

  variables = Outer().init(jax.random.key(0), IMAGES[:1])
  names = parameter_groups(salijax.wrap(Outer(), variables), IMAGES).names
  assert names == tuple(f"backbone.{name}" for name in wrapped_models.LINEN_BLOCKS)


def test_nnx_groups_are_attributes_in_forward_order():
  class Net(nnx.Module):
    def __init__(self, rngs):
      self.head = nnx.Linear(8, 3, rngs=rngs)  # declared before the layers it follows
      self.norm = nnx.BatchNorm(8, rngs=rngs)
      self.conv = nnx.Conv(3, 8, (3, 3), rngs=rngs)

    def __call__(self, x):
      return self.head(self.norm(self.conv(x)).mean((1, 2)))

  groups = parameter_groups(salijax.wrap(Net(nnx.Rngs(0))), IMAGES)
  assert groups.names == ("head", "norm", "conv")
  assert groups.of_leaf.count("norm") == 4  # scale, bias, mean, var


def test_order_is_read_inside_jitted_functions_and_unread_groups_are_left_out():
  @jax.jit
  def forward(params, images):  # one call of a sub-program: every leaf is its operand
    hidden = jax.nn.relu(images.mean((1, 2)) @ params["early"])
    return hidden @ params["late"]

  params = {"early": jnp.ones((3, 4)), "late": jnp.ones((4, 2)), "unused": jnp.ones(5)}
  groups = parameter_groups(salijax.wrap(forward, params), IMAGES)
  assert groups.names == ("late", "early")
  assert groups.of_leaf == ("early", "late", "unused")


def test_a_classifier_without_variables_has_no_groups():
  with pytest.raises(ValueError, match="clf: expected a Classifier with variables"):
    parameter_groups(salijax.wrap(lambda x: x.mean((1, 2))), IMAGES)
