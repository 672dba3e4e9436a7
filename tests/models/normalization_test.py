"""Tests of BatchNorm in training: `bn_trainable` and the running-statistics update."""

import float_tolerance
import initialised_models
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from initialised_models import flax_activation

from salijax import models
from salijax.models import naming


def _variables(arch):
  """Variables with random running statistics, and images f32[2,32,32,3]."""
  return (initialised_models.variables(arch, random_statistics=True),
          jax.random.uniform(jax.random.key(2), (2, 32, 32, 3)))


def _create(arch, **kwargs):
  return models.create(arch, num_classes=initialised_models.NUM_CLASSES, **kwargs)


def _statistics_atols(x):
  """Bounds on the difference of two float32 computations of the channels' means and
  variances of x f32[B,H,W,C] (Flax: E[x^2] - E[x]^2; jnp.var: E[(x - E[x])^2]).

  Means: two n-term sums. Variances: Flax's E[x^2] (1) and E[x]^2 (2 |E[x]| times the
  mean's error: 2) and the reference's sum (1), each within the n-term bound of mean(x^2).
  """
  x = np.asarray(x, np.float64).reshape(-1, x.shape[-1]).T  # [C, n]
  n = x.shape[1]
  return (np.array([2 * float_tolerance.sum_atol(np.abs(c).mean(), n) for c in x]),
          np.array([4 * float_tolerance.sum_atol((c ** 2).mean(), n) for c in x]))


def _normalised_atol(x, normalised):
  """The error of (x - mean) / sqrt(var + 1e-5) from the statistics' errors, + 4 roundings."""
  mean_atol, var_atol = _statistics_atols(x)
  std = np.sqrt(np.asarray(x, np.float64).var(axis=(0, 1, 2)) + 1e-5)
  y = np.abs(np.asarray(normalised, np.float64))
  return float(np.max(mean_atol / std + y * var_atol / (2 * std ** 2)
                      + 4 * float_tolerance.EPS * y))


def _stats_by_layer(batch_stats):
  """torchvision BatchNorm name -> (running mean, running var)."""
  result = {}

  def visit(path, node):
    if "mean" in node:
      result[naming.torch_name(path)] = (node["mean"], node["var"])
    else:
      for name, child in node.items():
        visit((*path, name), child)

  visit((), batch_stats)
  return result


@pytest.mark.parametrize(("arch", "bn_trainable", "trained"), [
    ("resnet18", ("layer4", "fc"), lambda name: name.startswith("layer4.")),
    ("resnet18", ("layer2.0.downsample",), lambda name: name == "layer2.0.downsample.1"),
    ("resnet18", None, lambda name: True),
    ("vgg11_bn", ("features.26", "classifier"), lambda name: name == "features.26"),
])
def test_only_selected_batch_norms_update_statistics(arch, bn_trainable, trained):
  variables, images = _variables(arch)
  module = _create(arch, bn_trainable=bn_trainable)
  _, updates = module.apply(variables, images, train=True, mutable=["batch_stats"],
                            rngs={"dropout": jax.random.key(3)})
  before = _stats_by_layer(variables["batch_stats"])
  after = _stats_by_layer(updates["batch_stats"])
  assert set(before) == set(after)
  for name in before:
    for old, new in zip(before[name], after[name], strict=True):
      if trained(name):
        assert not np.allclose(old, new), name
      else:
        np.testing.assert_array_equal(old, new, err_msg=name)


def test_frozen_batch_norms_normalise_with_running_statistics():
  variables, images = _variables("resnet18")
  module = _create("resnet18", bn_trainable=("layer3", "layer4", "fc"))
  frozen_train = flax_activation(module, variables, images, "layer2", train=True)
  # A frozen BatchNorm is the inference one: the same ops, op by op.
  np.testing.assert_array_equal(frozen_train, flax_activation(module, variables, images, "layer2"))
  # layer3's BatchNorms normalise with the batch's statistics (scale 1, bias 0 at init).
  conv = flax_activation(module, variables, images, "layer3.0.conv1")
  expected = (conv - jnp.mean(conv, axis=(0, 1, 2))) / jnp.sqrt(
      jnp.var(conv, axis=(0, 1, 2)) + 1e-5)
  trained = flax_activation(module, variables, images, "layer3.0.bn1", train=True)
  np.testing.assert_allclose(trained, expected, rtol=0, atol=_normalised_atol(conv, expected))
  assert not np.allclose(trained, flax_activation(module, variables, images, "layer3.0.bn1"))


def test_feature_extraction_trains_like_inference():
  """With only the head's BatchNorms trainable (none), train=True is inference."""
  variables, images = _variables("resnet18")
  module = _create("resnet18", bn_trainable=("head",))
  logits, updates = module.apply(variables, images, train=True, mutable=["batch_stats"])
  np.testing.assert_array_equal(logits, module.apply(variables, images))  # the same ops
  jax.tree.map(np.testing.assert_array_equal, updates["batch_stats"], variables["batch_stats"])


def test_running_statistics_update_with_torch_momentum():
  """running = 0.9 * running + 0.1 * batch statistic (biased variance)."""
  variables, images = _variables("resnet18")
  module = _create("resnet18")
  conv1 = flax_activation(module, variables, images, "conv1")
  _, updates = module.apply(variables, images, train=True, mutable=["batch_stats"])
  old = variables["batch_stats"]["bn1"]
  new = updates["batch_stats"]["bn1"]
  mean_atol, var_atol = _statistics_atols(conv1)
  for stat, batch, atol in (("mean", jnp.mean(conv1, axis=(0, 1, 2)), mean_atol),
                            ("var", jnp.var(conv1, axis=(0, 1, 2)), var_atol)):
    expected = 0.9 * old[stat] + 0.1 * batch
    # 0.1 of the statistic's error, and the roundings of both updates (2 products, 1 sum).
    update_atol = float_tolerance.sum_atol(0.9 * np.abs(old[stat]) + 0.1 * np.abs(batch), 3)
    np.testing.assert_array_less(np.abs(np.asarray(new[stat]) - np.asarray(expected)),
                                 0.1 * atol + update_atol, err_msg=stat)
