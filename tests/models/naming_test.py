"""Tests of salijax.models.naming."""

import pytest

from salijax import models
from salijax.models import naming


@pytest.mark.parametrize(("torch_name", "flax_path"), [
    ("conv1", ("conv1",)),
    ("layer1.0.conv1", ("layer1_0", "conv1")),
    ("layer2.0.downsample.1", ("layer2_0", "downsample_1")),
    ("features.16", ("features_16",)),
    ("classifier.6.4", ("classifier_6_4",)),
])
def test_documented_examples(torch_name, flax_path):
  assert naming.flax_path(torch_name) == flax_path
  assert naming.torch_name(flax_path) == torch_name


@pytest.mark.parametrize("head", models.HEADS)
@pytest.mark.parametrize("arch", models.ARCHITECTURES)
def test_flax_paths_are_one_to_one_and_invertible_without_vits_underscores(arch, head):
  names = [layer.name for layer in models.create(arch, head=head).param_layers()]
  assert len({naming.flax_path(name) for name in names}) == len(names)
  if arch != "vit_b_16":
    for name in names:
      assert naming.torch_name(naming.flax_path(name)) == name


@pytest.mark.parametrize(("name", "prefix", "expected"), [
    ("layer4", "layer4", True),
    ("layer4.1.bn2", "layer4", True),
    ("layer41", "layer4", False),
    ("features.16", "features.1", False),
    ("bn1", "layer1.0.bn1", False),
])
def test_is_under(name, prefix, expected):
  assert naming.is_under(name, prefix) is expected


def test_with_ancestors():
  assert naming.with_ancestors(["layer4.1.conv1", "fc"]) == {
      "layer4", "layer4.1", "layer4.1.conv1", "fc"}
