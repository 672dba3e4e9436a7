"""EfficientNet-B0, MobileNetV2 and MobileNetV3-Large against torchvision's own models.

torchvision's model (random weights and BatchNorm statistics, eval mode) ->
its state_dict -> `torchvision_to_flax` -> the salijax model: logits, every
tap's activation and the head from a tap equal torch's, at matmul precision
"highest". The key tables themselves are checked for every architecture in
torchvision_to_flax_test.py.
"""

import math

import float_tolerance
import numpy as np
import pytest

from salijax import models
from salijax.porting.pth_reader import read_pth
from salijax.porting.torchvision_to_flax import torchvision_to_flax

pytestmark = [pytest.mark.xdist_group("torch_ported_models"), pytest.mark.slow]

ARCHS = ("efficientnet_b0", "mobilenet_v2", "mobilenet_v3_large")
# Layers on the longest path (convs, squeeze-excitation convs, linears) and the largest
# fan-in (the 1280-wide head's input, or MobileNetV3's classifier.3).
DEPTH_AND_FAN_IN = {"efficientnet_b0": (82, 1280), "mobilenet_v2": (54, 1280),
                    "mobilenet_v3_large": (50, 1280)}
DEFAULT_TAPS = {"efficientnet_b0": "features.8", "mobilenet_v2": "features.18",
                "mobilenet_v3_large": "features.16"}
# Taps whose head is compared with torch's output when that module's output is replaced:
# the default and one inside a residual block (a squeeze-excitation's, a block's Sequential).
HEAD_TAPS = {"efficientnet_b0": ("features.8", "features.2.1.block.2.fc1"),
             "mobilenet_v2": ("features.18", "features.3.conv"),
             "mobilenet_v3_large": ("features.16", "features.5.block.2.fc1")}


def _atol(arch, reference):
  """torch and XLA round every layer's float32 sums differently: independent roundings,
  ~sqrt(layers * fan-in) eps of the reference's scale."""
  depth, fan_in = DEPTH_AND_FAN_IN[arch]
  return math.sqrt(depth * fan_in) * float_tolerance.EPS * float(np.abs(reference).max())


def _torchvision_model(torchvision, torch_models, arch, num_classes=1000):
  model = getattr(torchvision.models, arch)(weights=None, num_classes=num_classes)
  torch_models.randomize(model, seed=0)
  return model.eval()


def _torch_input(torch, images):
  mean = np.asarray(models.IMAGENET_MEAN, np.float32)
  std = np.asarray(models.IMAGENET_STD, np.float32)
  return torch.from_numpy(((images - mean) / std).transpose(0, 3, 1, 2).copy())


def _to_nhwc(tensor):
  array = tensor.detach().numpy()
  return array.transpose(0, 2, 3, 1) if array.ndim == 4 else array


def _state_dict(model):
  return {k: v.numpy() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("arch", ARCHS)
def test_logits_match_torchvision(torch, torchvision, torch_models, arch):
  model = _torchvision_model(torchvision, torch_models, arch)
  images = np.random.default_rng(0).uniform(size=(2, 33, 47, 3)).astype(np.float32)
  # The mlp head's port is the same for every architecture: checked on one.
  heads = (("linear", 1000), ("mlp", 10)) if arch == "mobilenet_v2" else (("linear", 1000),)
  for head, num_classes in heads:
    if head == "mlp":
      new_head = torch_models.head("mlp", model.classifier[-1].in_features, num_classes)
      torch_models.randomize(new_head, seed=1)
      model.classifier[-1] = new_head
      model.eval()
    variables = torchvision_to_flax(arch, _state_dict(model), head=head)
    with torch.no_grad():
      expected = model(_torch_input(torch, images)).numpy()
    logits = np.asarray(models.create(arch, num_classes=num_classes, head=head)
                        .apply(variables, images))
    assert expected.shape == (2, num_classes)
    assert expected.std() > 0.1  # large enough for the tolerance to mean something
    assert np.abs(logits - expected).max() <= _atol(arch, expected), head


@pytest.mark.parametrize("arch", ARCHS)
def test_taps_match_torchvision_hooks(torch, torchvision, torch_models, arch):
  """The taps are exactly the modules torch runs (once each, outside the classifier);
  each tap's activation equals torch's forward-hook output; for `HEAD_TAPS` the
  Classifier's features are that activation and its head with the other image's
  activation equals torch with that module's output replaced."""
  model = _torchvision_model(torchvision, torch_models, arch, num_classes=10)
  module = models.create(arch, num_classes=10)
  variables = torchvision_to_flax(arch, _state_dict(model))
  modules = {n: m for n, m in model.named_modules() if n}
  images = np.random.default_rng(2).uniform(size=(2, 32, 32, 3)).astype(np.float32)
  x = _torch_input(torch, images)
  captured = {}
  hooks = [m.register_forward_hook(
      lambda _, __, out, n=n: captured.setdefault(n, []).append(out.clone()))
      for n, m in modules.items() if n != "features" and not n.startswith("classifier")]
  with torch.no_grad():
    logits = model(x).numpy()
  for hook in hooks:
    hook.remove()
  assert all(len(outputs) == 1 for outputs in captured.values())
  names = models.tap_names(module)
  assert set(names) == set(captured) and len(names) == len(set(names))
  assert models.default_tap(module) == DEFAULT_TAPS[arch]

  _, state = module.apply(variables, images, capture_intermediates=True,
                          mutable=["intermediates"])
  for name in names:
    node = state["intermediates"]
    for level in models.tap_path(module, name).split("/"):
      node = node[level]
    want = _to_nhwc(captured[name][0])
    np.testing.assert_allclose(node["__call__"][0], want, rtol=0, atol=_atol(arch, want),
                               err_msg=name)
  for name in HEAD_TAPS[arch]:
    clf = models.classifier(module, variables, layer=name)
    feats = clf.features(variables, images)
    want = _to_nhwc(captured[name][0])
    np.testing.assert_allclose(feats, want, rtol=0, atol=_atol(arch, want), err_msg=name)
    np.testing.assert_allclose(clf.head(variables, feats, images), logits, rtol=0,
                               atol=_atol(arch, logits), err_msg=name)
    hook = modules[name].register_forward_hook(lambda _, __, out, n=name: captured[n][0].flip(0))
    with torch.no_grad():
      swapped = model(x).numpy()
    hook.remove()
    np.testing.assert_allclose(clf.head(variables, feats[::-1], images), swapped, rtol=0,
                               atol=_atol(arch, swapped), err_msg=name)


def test_round_trip_through_torch_save_and_read_pth(torch, torchvision, torch_models, tmp_path):
  model = _torchvision_model(torchvision, torch_models, "mobilenet_v3_large", num_classes=10)
  images = np.random.default_rng(1).uniform(size=(2, 33, 33, 3)).astype(np.float32)
  with torch.no_grad():
    expected = model(_torch_input(torch, images)).numpy()
  for zipped in (True, False):
    path = tmp_path / f"mobilenet_v3_large_{zipped}.pth"
    torch.save(model.state_dict(), path, _use_new_zipfile_serialization=zipped)
    variables = torchvision_to_flax("mobilenet_v3_large", read_pth(path))
    logits = models.create("mobilenet_v3_large", num_classes=10).apply(variables, images)
    assert np.abs(np.asarray(logits) - expected).max() <= _atol("mobilenet_v3_large", expected)
