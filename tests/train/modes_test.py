"""Tests of the mode -> trainable parameters / BatchNorm plan."""

import pytest

from salijax.train import modes


def test_scratch_trains_everything():
  plan = modes.trainable_plan("scratch", (), head_prefix="fc")
  assert plan == modes.TrainablePlan(trainable=None, bn_trainable=None)


def test_feature_extraction_trains_the_head_only():
  plan = modes.trainable_plan("feature_extraction", (), head_prefix="classifier.6")
  assert plan.trainable == ("head",)
  assert plan.bn_trainable == ("classifier.6",)


def test_finetune_all_or_listed_layers():
  assert modes.trainable_plan("finetune", (), head_prefix="fc").trainable is None
  plan = modes.trainable_plan("finetune", ("layer4", "head"), head_prefix="fc")
  assert plan.trainable == ("layer4", "head")
  assert plan.bn_trainable == ("layer4", "fc")


@pytest.mark.parametrize("mode", ["scratch", "feature_extraction"])
def test_layers_only_for_finetune(mode):
  with pytest.raises(ValueError, match="trainable_layers"):
    modes.trainable_plan(mode, ("layer4",), head_prefix="fc")


def test_unknown_mode():
  with pytest.raises(ValueError, match="mode.*'fine_tune'"):
    modes.trainable_plan("fine_tune", (), head_prefix="fc")
