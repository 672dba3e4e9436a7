"""EfficientNet-B0 and the MobileNets train on the tiny synthetic setup: in feature extraction
only the head changes; in fine-tuning only the listed prefixes (and their BatchNorm statistics)."""

import pytest
from training_setup_test import bits, changed, train_a_few_steps

pytestmark = pytest.mark.slow

HEADS = {"efficientnet_b0": "classifier.1", "mobilenet_v2": "classifier.1",
         "mobilenet_v3_large": "classifier.3"}


# MobileNetV3-Large: its fine-tuning below (the same freezing, with one block more).
@pytest.mark.parametrize("arch", ["efficientnet_b0", "mobilenet_v2"])
def test_feature_extraction_changes_the_head_only(tiny_config, arch):
  tiny_config.model = arch
  tiny_config.mode = "feature_extraction"
  _, before, after = train_a_few_steps(tiny_config)
  params = changed(before.params, after.params)
  assert params.pop(HEADS[arch])
  assert params and not any(params.values())
  assert bits(after.batch_stats) == bits(before.batch_stats)


def test_finetune_listed_blocks_only(tiny_config):
  """MobileNetV3-Large with its last block and the head trainable: their parameters and that
  block's BatchNorm statistics change, nothing else does."""
  tiny_config.model = "mobilenet_v3_large"
  tiny_config.mode = "finetune"
  tiny_config.trainable_layers = "features.15,head"
  _, before, after = train_a_few_steps(tiny_config)
  for name, did_change in changed(before.params, after.params).items():
    assert did_change == (name.startswith("features.15.") or name == "classifier.3"), name
  stats = changed(before.batch_stats, after.batch_stats)
  assert any(stats.values())
  for name, did_change in stats.items():
    assert did_change == name.startswith("features.15."), name
