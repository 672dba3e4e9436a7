"""Tests of BatchNorm in training: `bn_trainable` and the running-statistics update."""

import initialised_models
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from salijax import models
from salijax.models import naming


def _variables(arch):
  """Variables with random running statistics, and images f32[2,32,32,3]."""
  return (initialised_models.variables(arch, random_statistics=True),
          jax.random.uniform(jax.random.key(2), (2, 32, 32, 3)))


def _create(arch, **kwargs):
  return models.create(arch, num_classes=initialised_models.NUM_CLASSES, **kwargs)


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
  frozen_train, _ = module.apply(variables, images, train=True, tap="layer2",
                                 mutable=["batch_stats"])
  np.testing.assert_allclose(frozen_train, module.apply(variables, images, tap="layer2"),
                             rtol=1e-5, atol=1e-5)
  # layer3's BatchNorms normalise with the batch's statistics (scale 1, bias 0 at init).
  conv = module.apply(variables, images, tap="layer3.0.conv1")
  expected = (conv - jnp.mean(conv, axis=(0, 1, 2))) / jnp.sqrt(
      jnp.var(conv, axis=(0, 1, 2)) + 1e-5)
  trained, _ = module.apply(variables, images, train=True, tap="layer3.0.bn1",
                            mutable=["batch_stats"])
  np.testing.assert_allclose(trained, expected, rtol=1e-4, atol=1e-4)
  assert not np.allclose(trained, module.apply(variables, images, tap="layer3.0.bn1"))


def test_feature_extraction_trains_like_inference():
  """With only the head's BatchNorms trainable (none), train=True is inference."""
  variables, images = _variables("resnet18")
  module = _create("resnet18", bn_trainable=("head",))
  logits, updates = module.apply(variables, images, train=True, mutable=["batch_stats"])
  np.testing.assert_allclose(logits, module.apply(variables, images), rtol=1e-5, atol=1e-5)
  jax.tree.map(np.testing.assert_array_equal, updates["batch_stats"], variables["batch_stats"])


def test_running_statistics_update_with_torch_momentum():
  """running = 0.9 * running + 0.1 * batch statistic (biased variance)."""
  variables, images = _variables("resnet18")
  module = _create("resnet18")
  conv1 = module.apply(variables, images, tap="conv1")
  _, updates = module.apply(variables, images, train=True, mutable=["batch_stats"])
  old = variables["batch_stats"]["bn1"]
  new = updates["batch_stats"]["bn1"]
  np.testing.assert_allclose(
      new["mean"], 0.9 * old["mean"] + 0.1 * jnp.mean(conv1, axis=(0, 1, 2)), rtol=1e-4,
      atol=1e-5)
  np.testing.assert_allclose(
      new["var"], 0.9 * old["var"] + 0.1 * jnp.var(conv1, axis=(0, 1, 2)), rtol=1e-4, atol=1e-5)
