"""parameter_blocks of EfficientNet-B0 and the MobileNets: one block per top-level module,
a BatchNorm with the conv before it, every inverted residual block whole."""

import jax
import pytest

from salijax import models


def _blocks(arch):
  module = models.create(arch, num_classes=5)
  shapes = jax.eval_shape(lambda: models.init(module, jax.random.key(0), 32))
  return models.parameter_blocks(models.classifier(module, shapes)), shapes


@pytest.mark.parametrize(("arch", "block", "head"), [
    ("efficientnet_b0", "features_2_1", "classifier_1"),
    ("mobilenet_v2", "features_3", "classifier_1"),
    ("mobilenet_v3_large", "features_15", "classifier_3")])
def test_blocks(arch, block, head):
  blocks, shapes = _blocks(arch)
  assert set(blocks) == set(shapes["params"])
  assert blocks["features_0_0"] == blocks["features_0_1"] == "features.0.0"
  assert blocks[block] == block.replace("_", ".")
  assert blocks[head] == head.replace("_", ".")
  assert len(set(blocks.values())) == len(blocks) - 2  # the stem's and last conv's BatchNorms
