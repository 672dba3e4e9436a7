"""Tests of salijax.models.vit: logits and taps vs torchvision's VisionTransformer, the CAMs.

A tiny configuration (32 px, patch 8, 2 layers, 2 heads, hidden 32, mlp 64) is
built in torch with torchvision's own class, given random weights (its head
starts at zero), ported through `torchvision_to_flax` and compared at matmul
precision "highest". The full vit_b_16 is compared once, in a slow test.
"""

import functools
import math

import float_tolerance
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from salijax import methods, models
from salijax.methods import gradient_cams
from salijax.porting.torchvision_to_flax import torchvision_to_flax

TINY = models.ViTShape(patch_size=8, num_layers=2, num_heads=2, hidden_dim=32, mlp_dim=64)
TINY_SIZE = 32
NUM_CLASSES = 5
MEAN = np.asarray(models.IMAGENET_MEAN, np.float32)
STD = np.asarray(models.IMAGENET_STD, np.float32)


def _torch_vit(torch, shape, image_size, num_classes, seed=0):
  """torchvision's VisionTransformer in eval mode, every parameter moved off its init
  (class token, biases and head start at zero) by N(0, 0.02), the head by N(0, 1/hidden)."""
  from torchvision.models import vision_transformer  # noqa: PLC0415 - needs torch
  torch.manual_seed(seed)
  model = vision_transformer.VisionTransformer(
      image_size=image_size, patch_size=shape.patch_size, num_layers=shape.num_layers,
      num_heads=shape.num_heads, hidden_dim=shape.hidden_dim, mlp_dim=shape.mlp_dim,
      num_classes=num_classes)
  with torch.no_grad():
    for parameter in model.parameters():
      parameter.add_(torch.randn_like(parameter) * 0.02)
    model.heads.head.weight.normal_(0.0, shape.hidden_dim ** -0.5)
  return model.eval()


def _torch_input(torch, images):
  """NHWC pixels -> NCHW ImageNet-normalised torch tensor."""
  return torch.from_numpy(((np.asarray(images) - MEAN) / STD).transpose(0, 3, 1, 2).copy())


def _atol(shape, reference):
  """torch and XLA round every float32 sum differently: independent roundings along the
  longest chain of sums (conv_proj, then per block in_proj, q.k, weights.v, out_proj,
  mlp.0, mlp.3, then the head), ~sqrt(chain * largest fan-in) eps of the reference's scale."""
  chain = 2 + 6 * shape.num_layers
  fan_in = max(3 * shape.patch_size ** 2, shape.mlp_dim, shape.hidden_dim)
  return math.sqrt(chain * fan_in) * float_tolerance.EPS * float(np.abs(reference).max())


@functools.cache
def _tiny():
  """(module, variables, images f32[2,32,32,3]) of a tiny ViT with random weights."""
  module = models.VisionTransformer(shape=TINY, num_classes=NUM_CLASSES)
  variables = models.init(module, jax.random.key(0), TINY_SIZE)
  params = jax.tree.map(lambda p: p + 0.1 * jax.random.normal(jax.random.key(1), p.shape),
                        variables["params"])
  images = jax.random.uniform(jax.random.key(2), (2, TINY_SIZE, TINY_SIZE, 3))
  return module, {"params": params}, images


@pytest.fixture(scope="module")
def tiny_pair(torch):
  """(torch model, salijax module, ported variables, images f32[2,32,32,3])."""
  model = _torch_vit(torch, TINY, TINY_SIZE, NUM_CLASSES)
  state_dict = {k: v.numpy() for k, v in model.state_dict().items()}
  module = models.VisionTransformer(shape=TINY)
  variables = torchvision_to_flax(module, state_dict)
  images = np.asarray(jax.random.uniform(jax.random.key(3), (2, TINY_SIZE, TINY_SIZE, 3)))
  return model, module.clone(num_classes=NUM_CLASSES), variables, images


def test_logits_match_torchvision(torch, tiny_pair):
  model, module, variables, images = tiny_pair
  with torch.no_grad():
    expected = model(_torch_input(torch, images)).numpy()
  actual = np.asarray(module.apply(variables, jnp.asarray(images)))
  assert np.abs(expected).max() > 0.1
  np.testing.assert_allclose(actual, expected, rtol=0, atol=_atol(TINY, expected))


TORCH_TAPS = ("conv_proj", "encoder.dropout", "encoder.layers.encoder_layer_0.ln_1",
              "encoder.layers.encoder_layer_0.self_attention", "encoder.layers.encoder_layer_0.mlp",
              "encoder.layers.encoder_layer_1.mlp.1", "encoder.layers.encoder_layer_1",
              "encoder.layers", "encoder.ln", "encoder")


@pytest.mark.parametrize("tap", TORCH_TAPS)
def test_tap_features_match_torch_forward_hooks(torch, tiny_pair, tap):
  """`features` at a tap is the torch module's output as a map: conv_proj's NCHW map
  transposed, token outputs without the class token, the grid row by row."""
  model, module, variables, images = tiny_pair
  captured = {}

  def hook(_, __, output):
    captured["out"] = (output[0] if isinstance(output, tuple) else output).detach().numpy()

  handle = model.get_submodule(tap).register_forward_hook(hook)
  with torch.no_grad():
    model(_torch_input(torch, images))
  handle.remove()
  expected = captured["out"]
  if expected.ndim == 4:
    expected = expected.transpose(0, 2, 3, 1)
  else:
    side = math.isqrt(expected.shape[1] - 1)
    expected = expected[:, 1:].reshape(expected.shape[0], side, side, expected.shape[-1])
  clf = models.classifier(module, variables, layer=tap)
  feats = np.asarray(clf.features(variables, jnp.asarray(images)))
  np.testing.assert_allclose(feats, expected, rtol=0, atol=_atol(TINY, expected))


def test_default_tap_gradients_match_torch(torch, tiny_pair):
  """The CAMs' inputs at the default tap (the last block's ln_1): the activation and the
  gradient of each image's target logit, as torch's hooks give them (class token dropped)."""
  model, module, variables, images = tiny_pair
  tap = models.default_tap(module)
  assert tap == "encoder.layers.encoder_layer_1.ln_1"
  labels = np.array([1, 3])
  captured = {}

  def hook(_, __, output):
    output.retain_grad()
    captured["out"] = output

  handle = model.get_submodule(tap).register_forward_hook(hook)
  logits = model(_torch_input(torch, images))
  logits[np.arange(2), labels].sum().backward()
  handle.remove()
  grid = (2, 4, 4, TINY.hidden_dim)
  expected_feats = captured["out"].detach().numpy()[:, 1:].reshape(grid)
  expected_grads = captured["out"].grad.numpy()[:, 1:].reshape(grid)
  clf = models.classifier(module, variables)
  feats, grads, _ = gradient_cams.layer_gradients(clf, jnp.asarray(images), jnp.asarray(labels))
  np.testing.assert_allclose(feats, expected_feats, rtol=0, atol=_atol(TINY, expected_feats))
  assert np.abs(expected_grads).max() > 0
  np.testing.assert_allclose(grads, expected_grads, rtol=0, atol=_atol(TINY, expected_grads))


@pytest.mark.parametrize("tap", ["encoder.layers.encoder_layer_1", "encoder.ln", "encoder"])
def test_patch_tokens_after_the_last_attention_do_not_reach_the_logits(tap):
  """Why the default tap is the last block's ln_1: later patch tokens have zero gradient."""
  module, variables, images = _tiny()
  feats, grads, _ = gradient_cams.layer_gradients(
      models.classifier(module, variables, layer=tap), images, jnp.array([0, 1]))
  assert np.abs(feats).max() > 0
  np.testing.assert_array_equal(grads, 0.0)


@pytest.mark.parametrize("tap", models.tap_names(models.VisionTransformer(shape=TINY)))
def test_head_of_features_is_the_model(tap):
  module, variables, images = _tiny()
  clf = models.classifier(module, variables, layer=tap)
  logits = module.apply(variables, images)
  feats = clf.features(variables, images)
  assert feats.shape[:3] == (2, 4, 4)
  np.testing.assert_array_equal(clf.head(variables, feats, images), logits)


def test_swapped_patch_embeddings_give_the_other_images_logits():
  """The map is spliced back in the token order it was read in; the class token is the
  same parameter for both images."""
  module, variables, images = _tiny()
  clf = models.classifier(module, variables, layer="conv_proj")
  logits = module.apply(variables, images)
  swapped = clf.head(variables, clf.features(variables, images)[::-1], images)
  np.testing.assert_allclose(swapped, logits[::-1], rtol=0, atol=_atol(TINY, logits))


@pytest.mark.parametrize("name", ["gradcam", "gradcam_plus_plus", "layercam", "xgradcam",
                                  "score_cam", "eigencam", "ablation_cam"])
def test_cam_family_runs_at_the_default_tap(name):
  module, variables, images = _tiny()
  clf = models.classifier(module, variables)
  maps = np.asarray(methods.get(name)(clf, images, jnp.array([0, 1])))
  assert maps.shape == (2, TINY_SIZE, TINY_SIZE)
  assert np.isfinite(maps).all()
  assert (maps.reshape(2, -1).max(axis=1) > 0).all()


def test_tap_names_of_vit_b_16():
  module = models.create("vit_b_16")
  names = models.tap_names(module)
  assert len(names) == 2 + 12 * 12 + 3
  assert names[:3] == ("conv_proj", "encoder.dropout", "encoder.layers.encoder_layer_0.ln_1")
  assert names[-4:] == ("encoder.layers.encoder_layer_11", "encoder.layers", "encoder.ln",
                        "encoder")
  assert models.default_tap(module) == "encoder.layers.encoder_layer_11.ln_1"
  assert models.head_prefix(module) == "heads.head"
  assert models.tap_path(module, "encoder.layers.encoder_layer_3.mlp") == (
      "encoder/layers/encoder_layer_3/mlp_4")



def test_other_image_sizes_are_refused_clearly():
  module, variables, _ = _tiny()
  with pytest.raises(ValueError, match=r"expected 32 x 32 images.*got 40 x 40"):
    module.apply(variables, jnp.zeros((1, 40, 40, 3)))
  with pytest.raises(ValueError, match="square images whose side is a multiple of the patch"):
    module.apply(variables, jnp.zeros((1, 36, 36, 3)))
  with pytest.raises(ValueError, match="image_size: expected a positive multiple of the patch"):
    models.init(module, jax.random.key(0), 30)


def test_initialisation_is_torchvisions():
  """Zero class token and linear head, LayerNorm 1/0, N(0, 0.02) positions, conv N(0, 1/fan_in),
  Xavier in_proj; on a one-block ViT of width 256 at 224 px (vit_b_16's init costs 40 s)."""
  shape = models.ViTShape(patch_size=16, num_layers=1, num_heads=4, hidden_dim=256, mlp_dim=512)
  module = models.VisionTransformer(shape=shape)
  params = models.init(module, jax.random.key(0), 224)["params"]
  np.testing.assert_array_equal(params["class_token"], 0.0)
  np.testing.assert_array_equal(params["heads"]["head"]["kernel"], 0.0)
  block = params["encoder"]["layers"]["encoder_layer_0"]
  np.testing.assert_array_equal(block["ln_1"]["scale"], 1.0)
  np.testing.assert_array_equal(block["self_attention"]["in_proj_bias"], 0.0)
  # Standard deviations of many draws, within 5% (tens of thousands of samples each).
  np.testing.assert_allclose(np.std(params["encoder"]["pos_embedding"]), 0.02, rtol=0.05)
  np.testing.assert_allclose(np.std(params["conv_proj"]["kernel"]), (3 * 16 * 16) ** -0.5,
                             rtol=0.05)
  xavier = math.sqrt(2 / (256 + 3 * 256))
  np.testing.assert_allclose(np.std(block["self_attention"]["in_proj_kernel"]), xavier,
                             rtol=0.05)


@pytest.mark.slow
def test_vit_b_16_logits_match_torchvision(torch):
  """The full vit_b_16 at 224 px, random weights, one image."""
  from torchvision.models import vit_b_16  # noqa: PLC0415 - needs torch
  torch.manual_seed(0)
  model = vit_b_16(weights=None).eval()
  with torch.no_grad():
    model.heads.head.weight.normal_(0.0, 768 ** -0.5)
  variables = torchvision_to_flax("vit_b_16", {k: v.numpy() for k, v in model.state_dict().items()})
  images = np.asarray(jax.random.uniform(jax.random.key(0), (1, 224, 224, 3)))
  with torch.no_grad():
    expected = model(_torch_input(torch, images)).numpy()
  actual = np.asarray(models.create("vit_b_16").apply(variables, jnp.asarray(images)))
  assert np.abs(expected).max() > 0.1
  np.testing.assert_allclose(actual, expected, rtol=0, atol=_atol(models.VIT_B_16, expected))


def test_parameter_blocks_and_groups():
  """Parameter randomisation's groups: the top-level modules, from the logits down."""
  from salijax.metrics import parameter_groups  # noqa: PLC0415 - only here
  module, variables, images = _tiny()
  clf = models.classifier(module, variables)
  assert models.parameter_blocks(clf) == {"class_token": "class_token", "conv_proj": "conv_proj",
                                          "encoder": "encoder", "heads": "heads.head"}
  groups = parameter_groups.parameter_groups(clf, images[:1])
  assert groups.names == ("heads.head", "encoder", "class_token", "conv_proj")


def test_bad_shapes_are_refused():
  images = jnp.zeros((1, 32, 32, 3))
  bad = models.VisionTransformer(shape=models.ViTShape(8, 2, 3, 32, 64))
  with pytest.raises(ValueError, match="shape: hidden_dim 32 is not a multiple of num_heads 3"):
    bad.init(jax.random.key(0), images)
  with pytest.raises(ValueError, match="shape: expected a ViTShape of positive ints"):
    models.VisionTransformer(shape=models.ViTShape(8, 0, 2, 32, 64)).init(jax.random.key(0),
                                                                          images)
