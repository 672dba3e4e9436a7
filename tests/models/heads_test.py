"""Tests of salijax.models.heads: the linear and mlp heads."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from salijax import models
from salijax.models import heads


@pytest.mark.parametrize(("arch", "names", "in_features"), [
    ("resnet18", ("fc_1", "fc_4"), 512), ("resnet50", ("fc_1", "fc_4"), 2048),
    ("vgg11", ("classifier_6_1", "classifier_6_4"), 4096)])
def test_mlp_head_shapes(arch, names, in_features):
  params = jax.eval_shape(lambda: models.init(
      models.create(arch, num_classes=10, head="mlp"), jax.random.key(0), 32))["params"]
  assert params[names[0]]["kernel"].shape == (in_features, 64)
  assert params[names[1]]["kernel"].shape == (64, 10)
  assert names[0].rsplit("_", 1)[0] not in params  # no linear head next to it


def test_mlp_dropout_only_in_training():
  module = models.create("resnet18", num_classes=10, head="mlp")
  variables = models.init(module, jax.random.key(0), 32)
  images = jax.random.uniform(jax.random.key(1), (2, 32, 32, 3))

  def train(seed):
    return module.apply(variables, images, train=True, rngs={"dropout": jax.random.key(seed)},
                        mutable=["batch_stats"])[0]

  assert not np.allclose(train(0), train(1))
  np.testing.assert_array_equal(train(0), train(0))
  np.testing.assert_array_equal(module.apply(variables, images), module.apply(variables, images))


def test_standalone_head_draws_the_models_head():
  for arch, head in [("resnet34", "linear"), ("resnet18", "mlp")]:
    module = models.create(arch, num_classes=3, head=head)
    spec = module.head_spec()
    full = models.init(module, jax.random.key(7), 32)["params"]
    first = full[spec.layers()[0].replace(".", "_")]["kernel"]
    alone = heads.StandaloneHead(spec).init(jax.random.key(7), jnp.zeros((1, first.shape[0])))
    for name, layer in alone["params"].items():
      jax.tree.map(np.testing.assert_array_equal, layer, full[name])


def test_unknown_head_kind_raises():
  module = models.ResNet(stage_sizes=(1, 1, 1, 1), bottleneck=False, head="conv")
  with pytest.raises(ValueError, match="head.*'conv'"):
    jax.eval_shape(lambda: models.init(module, jax.random.key(0), 32))
