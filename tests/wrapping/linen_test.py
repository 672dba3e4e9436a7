"""salijax.wrap on Flax linen modules: the Flax documentation's CNN, a residual CNN, a ViT,
flaxmodels' ResNet18 (a third-party package) and salijax's own ResNet18."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import wrapped_checks

import salijax
from salijax import methods, models
from salijax.wrapping import layer_names


class DocsCNN(nn.Module):
  """The CNN of Flax's linen documentation."""

  @nn.compact
  def __call__(self, x):
    x = nn.relu(nn.Conv(features=32, kernel_size=(3, 3))(x))
    x = nn.avg_pool(x, window_shape=(2, 2), strides=(2, 2))
    x = nn.relu(nn.Conv(features=64, kernel_size=(3, 3))(x))
    x = nn.avg_pool(x, window_shape=(2, 2), strides=(2, 2))
    x = x.reshape((x.shape[0], -1))
    x = nn.relu(nn.Dense(features=64)(x))
    return nn.Dense(features=5)(x)


class Block(nn.Module):
  @nn.compact
  def __call__(self, x):
    y = nn.relu(nn.Conv(16, (3, 3), name="conv_a")(x))
    y = nn.Conv(16, (3, 3), name="conv_b")(y)
    return nn.relu(x + y)


class ResidualCNN(nn.Module):
  """A stem, a residual block whose inner conv is a layer, a dict output."""

  @nn.compact
  def __call__(self, x, train: bool = True):
    x = nn.relu(nn.Conv(16, (3, 3), strides=(2, 2), name="stem")(x))
    x = nn.Dropout(0.5, deterministic=not train)(x)
    x = Block(name="block")(x)
    return {"logits": nn.Dense(4, name="fc")(x.mean((1, 2))), "features": x}


class TinyViT(nn.Module):
  """Patch embedding, a class token and two pre-norm transformer blocks."""

  @nn.compact
  def __call__(self, x):
    x = nn.Conv(32, (8, 8), strides=(8, 8), name="patches")(x)
    x = x.reshape(x.shape[0], -1, 32)
    cls = self.param("cls", nn.initializers.normal(0.02), (1, 1, 32))
    x = jnp.concatenate([jnp.broadcast_to(cls, (x.shape[0], 1, 32)), x], axis=1)
    x = x + self.param("pos", nn.initializers.normal(0.02), x.shape[1:])
    for i in range(2):
      block = nn.Sequential([nn.LayerNorm(), nn.MultiHeadDotProductAttention(num_heads=2)],
                            name=f"attn_{i}")
      x = x + block(x)
      x = x + nn.Sequential([nn.LayerNorm(), nn.Dense(64), nn.relu, nn.Dense(32)],
                            name=f"mlp_{i}")(x)
    return nn.Dense(3, name="head")(nn.LayerNorm(name="norm")(x[:, 0]))

_images = wrapped_checks.random_images


def _linen_layer_forward(module, variables, images, layer, **kwargs):
  """The test's own reading of a linen layer: intercept it, add delta, return its output."""

  def layer_forward(delta):
    seen = []

    def interceptor(next_fun, args, kw, context):
      out = next_fun(*args, **kw)
      if context.method_name == "__call__" and "/".join(context.module.path) == layer:
        seen.append(out)
        return out if delta is None else out + delta
      return out

    with nn.intercept_methods(interceptor):
      out = module.apply(variables, images, **kwargs)
    return (out["logits"] if isinstance(out, dict) else out), seen[0]

  return layer_forward


@pytest.mark.parametrize("layer", ["Conv_0", "Conv_1"])
def test_docs_cnn(layer):
  module, images, labels = DocsCNN(), _images(), jnp.array([1, 4])
  variables = module.init(jax.random.key(0), images)
  clf = salijax.wrap(module, variables, layer=layer)
  wrapped_checks.assert_head_is_exact(clf, images)
  wrapped_checks.assert_gradcam_matches(
      clf, _linen_layer_forward(module, variables, images, layer), images, labels)
  if layer == "Conv_1":
    wrapped_checks.assert_every_method_runs(clf, images, labels)


def test_a_layer_inside_a_residual_block_keeps_the_skip_path():
  module, images, labels = ResidualCNN(), _images(), jnp.array([0, 3])
  variables = module.init({"params": jax.random.key(0), "dropout": jax.random.key(1)}, images)
  clf = salijax.wrap(module, variables, layer="block/conv_b", output="logits",
                     call_kwargs={"train": False})
  wrapped_checks.assert_head_is_exact(clf, images)
  wrapped_checks.assert_gradcam_matches(
      clf, _linen_layer_forward(module, variables, images, "block/conv_b", train=False),
      images, labels)
  # Zero features at conv_b leave the skip path: logits of fc(mean(relu(x))).
  feats = clf.features(clf.variables, images)
  zeroed = clf.head(clf.variables, jnp.zeros_like(feats), images)
  stem = jax.nn.relu(nn.Conv(16, (3, 3), strides=(2, 2)).apply(
      {"params": variables["params"]["stem"]}, images))
  expected = nn.Dense(4).apply({"params": variables["params"]["fc"]},
                               jax.nn.relu(stem).mean((1, 2)))
  np.testing.assert_allclose(zeroed, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_vit_token_layer_drops_the_class_token():
  module, images, labels = TinyViT(), _images(), jnp.array([2, 0])
  variables = module.init(jax.random.key(0), images)
  with pytest.raises(ValueError, match="prefix_tokens=1"):
    clf = salijax.wrap(module, variables, layer="mlp_0")
    clf.features(clf.variables, images)
  clf = salijax.wrap(module, variables, layer="mlp_0", prefix_tokens=1)
  feats = clf.features(clf.variables, images)
  assert feats.shape == (2, 4, 4, 32)
  wrapped_checks.assert_head_is_exact(clf, images)

  def layer_forward(delta):  # the test's own: tokens 1..16 as a 4x4 grid
    seen = []

    def interceptor(next_fun, args, kw, context):
      out = next_fun(*args, **kw)
      if context.method_name == "__call__" and context.module.path == ("mlp_0",):
        grid = out[:, 1:].reshape(2, 4, 4, 32)
        seen.append(grid)
        if delta is not None:
          out = out.at[:, 1:].add(delta.reshape(2, 16, 32))
      return out

    with nn.intercept_methods(interceptor):
      logits = module.apply(variables, images)
    return logits, seen[0]

  wrapped_checks.assert_gradcam_matches(clf, layer_forward, images, labels)
  wrapped_checks.assert_every_method_runs(clf, images, labels, skip=("guided_backprop",
                                                                     "guided_gradcam", "lrp"))
  # LRP has no rule for LayerNorm and attention (their `square`, `exp`, ...): refused by name.
  with pytest.raises(NotImplementedError, match="LRP: no rule for `square`"):
    methods.lrp(clf, images, labels)


def test_salijax_resnet18_wrapped_equals_its_native_classifier():
  module = models.create("resnet18", num_classes=5)
  variables = models.init(module, jax.random.key(0), image_size=32)
  images, labels = _images(), jnp.array([1, 3])
  native = models.classifier(module, variables, layer="layer4")
  wrapped = salijax.wrap(module, variables, layer="layer4_1")
  np.testing.assert_array_equal(wrapped.features(variables, images),
                                native.features(variables, images))
  for name in ("gradcam", "guided_backprop", "score_cam"):
    np.testing.assert_allclose(methods.get(name)(wrapped, images, labels),
                               methods.get(name)(native, images, labels), rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_flaxmodels_resnet18_third_party():
  flaxmodels = wrapped_checks.extra_module("flaxmodels")
  module = flaxmodels.ResNet18(pretrained=None, normalize=False, num_classes=6)
  images, labels = _images(), jnp.array([5, 2])
  variables = module.init(jax.random.key(0), images, train=False)
  clf = salijax.wrap(module, variables, layer="BasicBlock_7", call_kwargs={"train": False},
                     preprocess=salijax.wrapping.Preprocess(mean=(0.485, 0.456, 0.406),
                                                            std=(0.229, 0.224, 0.225)))
  wrapped_checks.assert_head_is_exact(clf, images)
  normalised = salijax.wrapping.Preprocess(mean=(0.485, 0.456, 0.406),
                                           std=(0.229, 0.224, 0.225))(images)
  wrapped_checks.assert_gradcam_matches(
      clf, _linen_layer_forward(module, variables, normalised, "BasicBlock_7", train=False),
      images, labels)
  wrapped_checks.assert_every_method_runs(clf, images, labels, skip=("lrp",))
  # flaxmodels' ResNet ends in a softmax (its `max`, `exp`, ...), which LRP has no rule for.
  with pytest.raises(NotImplementedError, match="LRP: no rule for `max`"):
    methods.lrp(clf, images, labels)


def test_unknown_layer_lists_the_layers_that_ran():
  module, images = DocsCNN(), _images()
  variables = module.init(jax.random.key(0), images)
  clf = salijax.wrap(module, variables, layer="Conv_7")
  with pytest.raises(ValueError, match="'Conv_7'.*'Conv_0', 'Conv_1', 'Dense_0', 'Dense_1'"):
    methods.gradcam(clf, images, jnp.array([0, 1]))
  assert [name for name, _ in layer_names(module, variables, images)] == [
      "Conv_0", "Conv_1", "Dense_0", "Dense_1"]
  assert dict(layer_names(module, variables, images))["Conv_1"] == (2, 16, 16, 64)


def test_a_layer_that_is_no_map_is_refused_with_its_shape():
  module, images = DocsCNN(), _images()
  variables = module.init(jax.random.key(0), images)
  clf = salijax.wrap(module, variables, layer="Dense_0")
  with pytest.raises(ValueError, match=r"'Dense_0'.*\(2, 64\)"):
    clf.features(clf.variables, images)
