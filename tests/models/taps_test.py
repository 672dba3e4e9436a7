"""Tests of the taps: `classifier(layer=tap)`, `tap_names`, `tap_path`, `default_tap`.

The activations themselves are compared with torch's forward hooks in
tests/porting/torchvision_to_flax_test.py; here the head/features algebra.
"""

import functools
import math

import float_tolerance
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from initialised_models import NUM_CLASSES, flax_activation, variables

from salijax import models

# Module-scoped fixtures: one worker runs the whole group, so they are built once.
pytestmark = pytest.mark.xdist_group("models_taps")

# resnet50's bottleneck taps: in tests/porting/torchvision_to_flax_test.py,
# where the model is built anyway.
CASES = ([("resnet18", t) for t in models.tap_names(models.create("resnet18"))]
         + [("vgg11", t) for t in models.tap_names(models.create("vgg11"))])


@functools.cache
def _model(arch):
  """(module, variables, images f32[2,32,32,3], logits) with random BatchNorm statistics."""
  module = models.create(arch, num_classes=NUM_CLASSES)
  params = variables(arch, random_statistics=True)
  images = jax.random.uniform(jax.random.key(2), (2, 32, 32, 3))
  return module, params, images, module.apply(params, images)


# Layers on the longest path and the largest fan-in (resnet18: 3*3*512; vgg11: 512*7*7).
DEPTH_AND_FAN_IN = {"resnet18": (18, 3 * 3 * 512), "vgg11": (11, 512 * 7 * 7)}


def _assert_close(arch, actual, expected):
  """Within ~sqrt(layers * fan-in) eps of the logits' scale: the batch's other row may take
  other float32 kernels (tiles, remainders) in every layer, rounding independently."""
  scale = float(jnp.abs(expected).max())
  assert scale > 0
  atol = math.sqrt(math.prod(DEPTH_AND_FAN_IN[arch])) * float_tolerance.EPS * scale
  np.testing.assert_allclose(actual, expected, rtol=0, atol=atol)


def _inside_a_block(arch, tap):
  return arch.startswith("resnet") and tap.count(".") == 2


@pytest.mark.parametrize(("arch", "tap"), CASES)
def test_head_of_features_is_the_model(arch, tap):
  """head(features(x), x) == apply(x); with the other image's features in place
  of this one's, a tap outside residual blocks gives the other image's logits."""
  module, variables, images, logits = _model(arch)
  clf = models.classifier(module, variables, layer=tap)
  feats = clf.features(variables, images)
  assert feats.ndim == 4 and feats.shape[0] == 2 and feats.dtype == jnp.float32
  # Op by op (no jit): the same ops as Flax's own reading of that module's output.
  np.testing.assert_array_equal(feats, flax_activation(module, variables, images, tap))
  np.testing.assert_array_equal(clf.head(variables, feats, images), logits)
  swapped = clf.head(variables, feats[::-1], images)
  if _inside_a_block(arch, tap):
    # The skip path still comes from `images`: neither image's logits.
    assert not np.allclose(swapped, logits[::-1], rtol=1e-3, atol=1e-6)
  else:
    _assert_close(arch, swapped, logits[::-1])


def test_tap_names_of_resnet18():
  names = models.tap_names(models.create("resnet18"))
  assert names[:5] == ("conv1", "bn1", "relu", "maxpool", "layer1.0.conv1")
  assert names[-3:] == ("layer4.1", "layer4", "avgpool")
  for stage in range(1, 5):
    for block in range(2):
      prefix = f"layer{stage}.{block}"
      assert {f"{prefix}.{n}" for n in ("conv1", "bn1", "conv2", "bn2")} <= set(names)
      assert prefix in names
      assert (f"{prefix}.downsample" in names) == (stage > 1 and block == 0)
  assert len(names) == len(set(names))


def test_tap_names_of_resnet50_bottlenecks():
  names = models.tap_names(models.create("resnet50"))
  assert {"layer1.0.downsample", "layer1.0.conv3", "layer1.0.bn3", "layer4.2.bn3"} <= set(names)
  assert "layer1.1.downsample" not in names


@pytest.mark.parametrize(("arch", "last", "default"), [
    ("vgg11", 20, "features.19"), ("vgg11_bn", 28, "features.27"),
    ("vgg16", 30, "features.29")])
def test_vgg_taps(arch, last, default):
  module = models.create(arch)
  assert models.tap_names(module) == tuple(f"features.{i}" for i in range(last + 1)) + (
      "avgpool",)
  assert models.default_tap(module) == default


@pytest.mark.parametrize("arch", ["resnet18", "resnet34", "resnet50"])
def test_resnet_default_tap(arch):
  assert models.default_tap(models.create(arch)) == "layer4"


def test_tap_paths():
  resnet, vgg = models.create("resnet50"), models.create("vgg11")
  assert [models.tap_path(resnet, t) for t in (
      "relu", "layer1.0.conv3", "layer1.0.downsample", "layer1.2", "layer1", "avgpool")] == [
          "relu", "layer1_0/conv3", "layer1_0/downsample_1", "layer1_2", "layer1_2", "avgpool"]
  assert [models.tap_path(vgg, t) for t in ("features.19", "features.20", "avgpool")] == [
      "features_19", "features_20", "avgpool"]


def test_unknown_tap_names_layer_value_and_valid_names():
  module, variables, _, _ = _model("resnet18")
  with pytest.raises(ValueError, match=r"layer.*'layer4.1.relu'") as error:
    models.classifier(module, variables, layer="layer4.1.relu")
  assert "'conv1'" in str(error.value) and "'avgpool'" in str(error.value)


def test_bad_features_for_the_head_raise():
  module, variables, images, _ = _model("resnet18")
  clf = models.classifier(module, variables, layer="layer4")
  with pytest.raises(ValueError, match=r"feats.*\(2, 1, 1, 512\)"):
    clf.head(variables, jnp.zeros((2, 1, 1, 256)), images)


def test_features_need_no_layer_after_the_tap():
  """Under jit, reading conv1 compiles to a program with one convolution: the rest of
  the network is removed."""
  module, variables, images, _ = _model("resnet18")
  clf = models.classifier(module, variables, layer="conv1")
  hlo = jax.jit(clf.features).lower(variables, images).compile().as_text()
  assert hlo.count("convolution(") == 1
