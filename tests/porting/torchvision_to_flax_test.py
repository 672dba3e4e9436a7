"""Tests of salijax.porting.torchvision_to_flax: key table, logits and taps vs torch, errors."""

import json
import math
import pathlib
import re

import float_tolerance
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from salijax import models
from salijax.porting.pth_reader import read_pth
from salijax.porting.torchvision_to_flax import DROPPED, key_table, torchvision_to_flax

# Module-scoped fixtures: one worker runs the whole group, so they are built once.
pytestmark = [pytest.mark.xdist_group("torch_ported_models"), pytest.mark.slow]

REFERENCE = {
    arch: [(key, tuple(shape), dtype) for key, shape, dtype in entries]
    for arch, entries in json.loads(
        (pathlib.Path(__file__).parents[2] / "third_party" / "torchvision"
         / "state_dict_keys.json").read_text()).items()
    if arch != "source"}
# The ViT's port is tested in tests/porting/vit_port_test.py and tests/models/vit_test.py.
CNNS = tuple(arch for arch in models.ARCHITECTURES if arch != "vit_b_16")
HEAD_PREFIX = {"resnet18": "fc", "resnet34": "fc", "resnet50": "fc", "vgg11": "classifier.6",
               "vgg11_bn": "classifier.6", "vgg16": "classifier.6",
               "efficientnet_b0": "classifier.1", "mobilenet_v2": "classifier.1",
               "mobilenet_v3_large": "classifier.3"}
# Not multiples of 32, one not square; vgg11 at 96x130 pools a 3x4 map to 7x7.
LOGIT_SIZES = {"resnet18": (33, 47), "resnet34": (33, 47), "resnet50": (33, 47),
               "vgg11": (96, 130), "vgg11_bn": (45, 45), "vgg16": (32, 40)}
# Layers on the longest path and the largest fan-in (resnets: a 3x3 conv of 512 channels;
# vggs: the classifier's first layer, 512 * 7 * 7).
DEPTH_AND_FAN_IN = {"resnet18": (18, 4608), "resnet34": (34, 4608), "resnet50": (50, 4608),
                    "vgg11": (11, 25088), "vgg11_bn": (11, 25088), "vgg16": (16, 25088)}


def _atol(arch, reference):
  """torch and XLA round every layer's float32 sums differently (the matmul precision is
  "highest"): independent roundings, ~sqrt(layers * fan-in) eps of the reference's scale."""
  depth, fan_in = DEPTH_AND_FAN_IN[arch]
  return math.sqrt(depth * fan_in) * float_tolerance.EPS * float(np.abs(reference).max())


def _zeros_state_dict(arch):
  return {k: np.zeros(shape, np.int64 if dtype == "int64" else np.float32)
          for k, shape, dtype in REFERENCE[arch]}


def _random_state_dict(arch, seed=0):
  rng = np.random.default_rng(seed)
  return {k: (np.array(7) if dtype == "int64" else rng.standard_normal(shape, np.float32))
          for k, shape, dtype in REFERENCE[arch]}


def _torch_input(torch, images):
  """NHWC pixels -> NCHW ImageNet-normalised torch tensor (normalisation done here)."""
  mean = np.asarray([0.485, 0.456, 0.406], np.float32)
  std = np.asarray([0.229, 0.224, 0.225], np.float32)
  return torch.from_numpy(((images - mean) / std).transpose(0, 3, 1, 2).copy())


def _to_nhwc(tensor):
  array = tensor.detach().numpy()
  return array.transpose(0, 2, 3, 1) if array.ndim == 4 else array


def _state_dict_arrays(model):
  return {k: v.numpy() for k, v in model.state_dict().items()}


# ---------------------------------------------------------------- key table


@pytest.mark.parametrize("arch", CNNS)
def test_key_table_is_torchvisions(arch):
  table = key_table(models.create(arch))
  assert list(table) == [k for k, _, _ in REFERENCE[arch]]
  assert {k for k, e in table.items() if e is DROPPED} == {
      k for k, _, _ in REFERENCE[arch] if k.endswith(".num_batches_tracked")}


@pytest.mark.parametrize("arch", CNNS)
def test_mlp_key_table_replaces_the_head(arch):
  prefix = HEAD_PREFIX[arch]
  backbone = [k for k, _, _ in REFERENCE[arch] if not k.startswith(prefix + ".")]
  mlp = [f"{prefix}.{i}.{p}" for i in (1, 4) for p in ("weight", "bias")]
  assert list(key_table(models.create(arch, head="mlp"))) == backbone + mlp


# ------------------------------------------------------------- torch logits


# EfficientNet-B0 and the MobileNets: tests/porting/mobile_models_test.py, against torchvision.
@pytest.mark.parametrize("arch", LOGIT_SIZES)
def test_logits_match_torch(torch, torch_models, arch):
  model = torch_models.build(arch)
  assert [(k, tuple(v.shape), str(v.dtype).removeprefix("torch."))
          for k, v in model.state_dict().items()] == REFERENCE[arch]
  images = np.random.default_rng(0).uniform(size=(2, *LOGIT_SIZES[arch], 3)).astype(np.float32)
  for head, num_classes in (("linear", 1000), ("mlp", 10)):
    if head == "mlp":
      in_features = 4096 if arch.startswith("vgg") else model.fc.in_features
      new_head = torch_models.head("mlp", in_features, num_classes)
      torch_models.randomize(new_head, seed=1)
      if arch.startswith("vgg"):
        model.classifier[6] = new_head
      else:
        model.fc = new_head
      model.eval()
    variables = torchvision_to_flax(arch, _state_dict_arrays(model), head=head)
    module = models.create(arch, num_classes=num_classes, head=head)
    expected_shapes = jax.eval_shape(lambda m=module: models.init(m, jax.random.key(0), 32))
    assert jax.tree.structure(variables) == jax.tree.structure(expected_shapes)
    assert jax.tree.all(jax.tree.map(
        lambda a, b: a.shape == b.shape and a.dtype == b.dtype, variables, expected_shapes))
    with torch.no_grad():
      expected = model(_torch_input(torch, images)).numpy()
    logits = np.asarray(module.apply(variables, images))
    assert expected.shape == (2, num_classes)
    assert expected.std() > 0.1  # large enough for the tolerance to mean something
    assert np.abs(logits - expected).max() <= _atol(arch, expected), head
    del variables


def test_round_trip_through_torch_save_and_read_pth(torch, torch_models, tmp_path):
  model = torch_models.build("resnet18", num_classes=10)
  images = np.random.default_rng(1).uniform(size=(2, 33, 33, 3)).astype(np.float32)
  with torch.no_grad():
    expected = model(_torch_input(torch, images)).numpy()
  for zipped in (True, False):
    path = tmp_path / f"resnet18_{zipped}.pth"
    torch.save(model.state_dict(), path, _use_new_zipfile_serialization=zipped)
    variables = torchvision_to_flax("resnet18", read_pth(path))
    logits = models.create("resnet18", num_classes=10).apply(variables, images)
    assert np.abs(np.asarray(logits) - expected).max() <= _atol("resnet18", expected)


# ---------------------------------------------------------------- taps vs torch


def _expected_tap_names(model):
  """torch module names that name one activation (not containers, heads, reused ReLUs)."""
  return {name for name, _ in model.named_modules()
          if name and name not in ("features", "classifier")
          and not name.startswith(("fc", "classifier."))
          and not re.fullmatch(r"layer\d\.\d+\.(relu|downsample\.\d)", name)}


# Taps whose head is checked against torch: every kind of tap of a block with
# a downsample, and taps between blocks and stages.
HEAD_TAPS = {
    "resnet18": ("maxpool", "layer2.0.conv1", "layer2.0.bn1", "layer2.0.conv2",
                 "layer2.0.bn2", "layer2.0.downsample", "layer2.0", "layer4.1.conv2",
                 "layer4.1.bn2", "layer4", "avgpool"),
    "vgg11": ("features.0", "features.7", "features.19", "features.20", "avgpool"),
    "resnet50": ("layer1.0.conv3", "layer1.0.bn3", "layer1.0.downsample", "layer1.0",
                 "layer4.2.bn3"),
}


# resnet18's and vgg11's head(features(x), x) == apply(x) for every tap are
# checked in tests/models/taps_test.py; resnet50's here.
@pytest.mark.parametrize(("arch", "check_identity"),
                         [("resnet18", False), ("vgg11", False), ("resnet50", True)])
def test_taps_match_torch_hooks(torch, torch_models, arch, check_identity):
  """Every tap's activation (resnet50: the stem, the stages and two bottleneck
  blocks) equals torch's forward-hook output of that module; the head with the
  other image's activation there equals torch with that module's output
  replaced by a hook (`HEAD_TAPS`); with `check_identity`, the head of every
  tap's own activation gives the model's logits."""
  model = torch_models.build(arch, num_classes=10)
  module = models.create(arch, num_classes=10)
  variables = torchvision_to_flax(arch, _state_dict_arrays(model))
  names = models.tap_names(module)
  assert set(names) == _expected_tap_names(model)
  if arch == "resnet50":
    names = [t for t in names if "." not in t or t.startswith(("layer1.0", "layer4.2"))]
  modules = dict(model.named_modules())
  images = np.random.default_rng(2).uniform(size=(2, 32, 32, 3)).astype(np.float32)
  x = _torch_input(torch, images)

  captured = {}
  hooks = [modules[n].register_forward_hook(
      lambda _, __, out, n=n: captured.setdefault(n, []).append(out.clone())) for n in names]
  with torch.no_grad():
    logits = model(x).numpy()
  for hook in hooks:
    hook.remove()
  assert all(len(captured[n]) == 1 for n in names)

  for name in names:
    clf = models.classifier(module, variables, layer=name)
    feats = clf.features(variables, images)
    want = _to_nhwc(captured[name][0])
    np.testing.assert_allclose(feats, want, rtol=0, atol=_atol(arch, want), err_msg=name)
    if check_identity:
      np.testing.assert_allclose(clf.head(variables, feats, images),
                                 logits, rtol=0, atol=_atol(arch, logits), err_msg=name)
    if name not in HEAD_TAPS[arch]:
      continue
    hook = modules[name].register_forward_hook(
        lambda _, __, out, n=name: captured[n][0].flip(0))
    with torch.no_grad():
      swapped = model(x).numpy()
    hook.remove()
    np.testing.assert_allclose(
        clf.head(variables, feats[::-1], images), swapped,
        rtol=0, atol=_atol(arch, swapped), err_msg=name)


# ------------------------------------------------------------------ errors


def test_another_architectures_checkpoint_gives_one_error_listing_all_keys():
  with pytest.raises(ValueError, match="state_dict") as error:
    torchvision_to_flax("resnet18", _zeros_state_dict("resnet34"))
  message = str(error.value)
  resnet18_keys = {k for k, _, _ in REFERENCE["resnet18"]}
  extra = [k for k, _, _ in REFERENCE["resnet34"] if k not in resnet18_keys]
  assert extra and all(f"{k} [" in message for k in extra)
  assert "missing" not in message

  with pytest.raises(ValueError, match="state_dict") as error:
    torchvision_to_flax("resnet18", _zeros_state_dict("vgg11"))
  message = str(error.value)
  assert "missing keys" in message and "unexpected keys" in message
  assert all(f"{k} [" in message for k, _, _ in REFERENCE["vgg11"])
  assert all(f"{k} [" in message for k, _, _ in REFERENCE["resnet18"]
             if not k.endswith("num_batches_tracked"))


def test_wrong_shapes_are_listed():
  state_dict = _zeros_state_dict("resnet18")
  state_dict["conv1.weight"] = np.zeros((64, 3, 3, 3), np.float32)
  state_dict["layer3.1.bn2.running_var"] = np.zeros((255,), np.float32)
  with pytest.raises(ValueError, match="2 shape mismatches") as error:
    torchvision_to_flax("resnet18", state_dict)
  message = str(error.value)
  assert "conv1.weight: expected [64, 3, 7, 7], got [64, 3, 3, 3]" in message
  assert "layer3.1.bn2.running_var: expected [256], got [255]" in message
  assert "missing" not in message and "unexpected" not in message


def test_num_batches_tracked_is_optional():
  state_dict = _random_state_dict("resnet18")
  without = {k: v for k, v in state_dict.items() if not k.endswith("num_batches_tracked")}
  jax.tree.map(np.testing.assert_array_equal, torchvision_to_flax("resnet18", without),
               torchvision_to_flax("resnet18", state_dict))


def test_bad_arguments():
  with pytest.raises(ValueError, match="arch.*'resnet101'"):
    torchvision_to_flax("resnet101", {})
  with pytest.raises(ValueError, match="head.*'conv'"):
    torchvision_to_flax("resnet18", {}, head="conv")
  with pytest.raises(TypeError, match="state_dict"):
    torchvision_to_flax("resnet18", [("conv1.weight", np.zeros(1))])


# -------------------------------------------------------------------- heads


def test_every_tensor_is_ported_with_its_transform():
  state_dict = _random_state_dict("resnet18")
  variables = torchvision_to_flax("resnet18", state_dict)
  params, stats = variables["params"], variables["batch_stats"]
  np.testing.assert_array_equal(params["conv1"]["kernel"],
                                state_dict["conv1.weight"].transpose(2, 3, 1, 0))
  np.testing.assert_array_equal(params["layer2_0"]["downsample_0"]["kernel"],
                                state_dict["layer2.0.downsample.0.weight"].transpose(2, 3, 1, 0))
  np.testing.assert_array_equal(params["layer2_0"]["downsample_1"]["scale"],
                                state_dict["layer2.0.downsample.1.weight"])
  np.testing.assert_array_equal(stats["layer4_1"]["bn2"]["var"],
                                state_dict["layer4.1.bn2.running_var"])
  np.testing.assert_array_equal(stats["bn1"]["mean"], state_dict["bn1.running_mean"])
  np.testing.assert_array_equal(params["fc"]["kernel"], state_dict["fc.weight"].T)
  np.testing.assert_array_equal(params["fc"]["bias"], state_dict["fc.bias"])


def test_new_head_when_the_class_count_differs():
  state_dict = _random_state_dict("resnet18")
  key = jax.random.key(3)
  variables = torchvision_to_flax("resnet18", state_dict, num_classes=10, key=key)
  fresh = models.init(models.create("resnet18", num_classes=10), key, 32)["params"]["fc"]
  jax.tree.map(np.testing.assert_array_equal, variables["params"]["fc"], fresh)
  np.testing.assert_array_equal(variables["params"]["layer1_0"]["conv1"]["kernel"],
                                state_dict["layer1.0.conv1.weight"].transpose(2, 3, 1, 0))


def test_new_mlp_head_on_a_linear_checkpoint():
  key = jax.random.key(4)
  variables = torchvision_to_flax("resnet18", _random_state_dict("resnet18"), head="mlp",
                                  key=key)
  fresh = models.init(models.create("resnet18", head="mlp"), key, 32)["params"]
  assert "fc" not in variables["params"]
  for name in ("fc_1", "fc_4"):
    jax.tree.map(np.testing.assert_array_equal, variables["params"][name], fresh[name])
  assert variables["params"]["fc_4"]["kernel"].shape == (64, 1000)


def test_mlp_checkpoint():
  rng = np.random.default_rng(5)
  state_dict = {k: v for k, v in _random_state_dict("resnet18").items()
                if not k.startswith("fc.")}
  state_dict |= {"fc.1.weight": rng.standard_normal((64, 512), np.float32),
                 "fc.1.bias": rng.standard_normal(64, np.float32),
                 "fc.4.weight": rng.standard_normal((10, 64), np.float32),
                 "fc.4.bias": rng.standard_normal(10, np.float32)}
  ported = torchvision_to_flax("resnet18", state_dict, head="mlp")["params"]
  np.testing.assert_array_equal(ported["fc_1"]["kernel"], state_dict["fc.1.weight"].T)
  np.testing.assert_array_equal(ported["fc_4"]["bias"], state_dict["fc.4.bias"])
  # Asked for a linear head: a new one, with the checkpoint's 10 classes.
  linear = torchvision_to_flax("resnet18", state_dict)["params"]
  assert linear["fc"]["kernel"].shape == (512, 10) and "fc_1" not in linear


def test_checkpoint_without_head():
  state_dict = {k: v for k, v in _zeros_state_dict("resnet18").items() if not k.startswith("fc")}
  variables = torchvision_to_flax("resnet18", state_dict, num_classes=10)
  assert variables["params"]["fc"]["kernel"].shape == (512, 10)
  with pytest.raises(ValueError, match=r"2 missing keys: fc.weight \[1000, 512\], fc.bias"):
    torchvision_to_flax("resnet18", state_dict)


def test_float16_checkpoint_becomes_float32():
  state_dict = {k: v.astype(np.float16) if v.dtype == np.float32 else v
                for k, v in _random_state_dict("resnet18").items()}
  variables = torchvision_to_flax("resnet18", state_dict)
  assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(variables))
  np.testing.assert_array_equal(variables["params"]["fc"]["bias"],
                                state_dict["fc.bias"].astype(np.float32))
