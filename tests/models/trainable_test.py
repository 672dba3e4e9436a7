"""Tests of salijax.models.trainable_mask and head_prefix."""

import jax
import pytest

from salijax import models


def _params(arch, head="linear"):
  module = models.create(arch, num_classes=10, head=head)
  return module, jax.eval_shape(lambda: models.init(module, jax.random.key(0), 32))["params"]


def _selected(mask):
  """The Flax paths (tuples of names) of the True leaves."""
  return {tuple(k.key for k in path)
          for path, value in jax.tree_util.tree_flatten_with_path(mask)[0] if value}


def _all_paths(params):
  return {tuple(k.key for k in path) for path, _ in jax.tree_util.tree_flatten_with_path(params)[0]}


@pytest.mark.parametrize(("arch", "head", "trainable", "expected"), [
    ("resnet18", "linear", ("layer4", "fc"), lambda p: p[0].startswith("layer4_") or p[0] == "fc"),
    ("resnet18", "linear", ("layer4.1",), lambda p: p[0] == "layer4_1"),
    ("resnet18", "linear", ("bn1",), lambda p: p[0] == "bn1"),
    ("resnet18", "linear", ("layer2.0.downsample",),
     lambda p: p[0] == "layer2_0" and p[1].startswith("downsample_")),
    ("resnet18", "linear", ("head",), lambda p: p[0] == "fc"),
    ("resnet18", "mlp", ("head",), lambda p: p[0] in ("fc_1", "fc_4")),
    ("resnet18", "mlp", ("fc",), lambda p: p[0] in ("fc_1", "fc_4")),
    ("resnet50", "linear", ("layer1.0.conv3", "layer1.0.bn3"),
     lambda p: p[0] == "layer1_0" and p[1] in ("conv3", "bn3")),
    ("vgg11", "linear", ("features.16",), lambda p: p[0] == "features_16"),
    ("vgg11", "linear", ("classifier",), lambda p: p[0].startswith("classifier_")),
    ("vgg11", "linear", ("head",), lambda p: p[0] == "classifier_6"),
    ("vgg11", "mlp", ("head", "features.0"),
     lambda p: p[0] in ("classifier_6_1", "classifier_6_4", "features_0")),
    ("vgg11_bn", "linear", ("features.1",), lambda p: p[0] == "features_1"),
])
def test_mask_selects_exactly_the_prefixes(arch, head, trainable, expected):
  module, params = _params(arch, head)
  mask = models.trainable_mask(module, params, trainable)
  assert jax.tree.structure(mask) == jax.tree.structure(params)
  assert all(isinstance(v, bool) for v in jax.tree.leaves(mask))
  want = {p for p in _all_paths(params) if expected(p)}
  assert want and _selected(mask) == want


def test_head_prefix():
  assert models.head_prefix(models.create("resnet50", head="mlp")) == "fc"
  assert models.head_prefix(models.create("vgg16")) == "classifier.6"


@pytest.mark.parametrize("prefix", ["layer5", "features.17", "layer4.1.relu", "fc.2"])
def test_unknown_prefix_lists_valid_names(prefix):
  arch = "vgg11" if prefix.startswith("features") else "resnet18"
  module, params = _params(arch, "mlp")
  with pytest.raises(ValueError, match=f"trainable.*'{prefix}'") as error:
    models.trainable_mask(module, params, ("head", prefix))
  top_level = ["'features'", "'classifier'"] if arch == "vgg11" else ["'layer4'", "'fc'"]
  for name in [*top_level, "'head'"]:
    assert name in str(error.value)


def test_bad_argument_types():
  module, params = _params("resnet18")
  with pytest.raises(TypeError, match="trainable"):
    models.trainable_mask(module, params, "layer4")
  with pytest.raises(TypeError, match="params"):
    models.trainable_mask(module, {"params": params}, ("layer4",))
  with pytest.raises(TypeError, match="module"):
    models.trainable_mask(object(), params, ("layer4",))
