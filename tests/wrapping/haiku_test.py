"""salijax.wrap on Haiku: its own hk.nets.ResNet18 and ResNet50 (with state), every method on
both, and a small CNN written as Haiku's documentation writes one (without_apply_rng)."""

import jax
import jax.numpy as jnp
import pytest
import wrapped_checks

import salijax
from salijax import methods
from salijax.wrapping import layer_names

hk = wrapped_checks.extra_module("haiku")

_images = wrapped_checks.random_images


def _resnet(net):
  def forward(x, is_training=True):
    return net(num_classes=7)(x, is_training=is_training)
  return hk.transform_with_state(forward)


def _trained_like(transformed, images):
  """Params with Haiku's zero-initialised block scales perturbed, and BatchNorm statistics
  near (mean 0, variance 1) as after training (at init they are 0: variance 0 would make
  the network divide by sqrt(eps) and amplify rounding)."""
  params, state = transformed.init(jax.random.key(0), images)
  leaves, tree = jax.tree.flatten(params)
  keys = jax.random.split(jax.random.key(5), len(leaves))
  params = jax.tree.unflatten(tree, [p + 0.05 * jax.random.normal(k, p.shape)
                                     for p, k in zip(leaves, keys, strict=True)])

  def statistic(path, value):
    names = jax.tree_util.keystr(path)
    if "average" not in names:
      return value
    noise = 0.1 * jax.random.uniform(jax.random.key(len(names)), value.shape)
    return 1.0 + noise if "var_ema" in names else noise - 0.05

  return params, jax.tree_util.tree_map_with_path(statistic, state)


def _haiku_layer_forward(transformed, variables, images, layer, **kwargs):
  """The test's own reading of a Haiku module: intercept it, add delta, return its output."""

  def layer_forward(delta):
    seen = []

    def interceptor(next_fun, args, kw, context):
      out = next_fun(*args, **kw)
      if context.method_name == "__call__" and context.module.module_name == layer:
        seen.append(out)
        return out if delta is None else out + delta
      return out

    with hk.intercept_methods(interceptor):
      if isinstance(transformed, hk.TransformedWithState):
        logits, _ = transformed.apply(*variables, None, images, **kwargs)
      else:
        logits = transformed.apply(variables, images, **kwargs)
    return logits, seen[0]

  return layer_forward


@pytest.mark.slow
@pytest.mark.parametrize("net,layer", [
    ("ResNet18", "res_net18/~/block_group_3"),
    ("ResNet18", "res_net18/~/block_group_2/~/block_1/~/conv_1"),
    ("ResNet50", "res_net50/~/block_group_3")])
def test_haiku_resnets(net, layer):
  transformed = _resnet(getattr(hk.nets, net))
  images = _images(size=64)  # block_group_3 at 2 x 2
  params, state = _trained_like(transformed, images)
  clf = salijax.wrap(transformed, (params, state), layer=layer,
                     call_kwargs={"is_training": False})
  labels = jnp.argmax(clf.logits(images), axis=-1)
  wrapped_checks.assert_head_is_exact(clf, images)
  wrapped_checks.assert_gradcam_matches(clf, _haiku_layer_forward(
      transformed, (params, state), images, layer, is_training=False), images, labels)


@pytest.mark.slow
@pytest.mark.parametrize("net,layer", [
    ("ResNet18", "res_net18/~/block_group_0/~/block_1/~/conv_0"),
    ("ResNet50", "res_net50/~/block_group_0/~/block_2/~/conv_1")])
def test_every_method_on_haiku_resnets(net, layer):
  """Every method on Haiku's ResNet18 and ResNet50 (BatchNorm state; basic and bottleneck
  blocks), read at a 64-channel conv inside the first group's last block (8 x 8 on 32 x 32
  images): its head runs the rest of the network, the block's skip path included. Score-CAM
  and SIDU forward the whole network once per channel of the layer: at block_group_3
  (512 / 2048 channels) that is minutes per method on a 2-core CPU."""
  transformed = _resnet(getattr(hk.nets, net))
  images = _images(size=32)
  params, state = _trained_like(transformed, images)
  clf = salijax.wrap(transformed, (params, state), layer=layer,
                     call_kwargs={"is_training": False})
  labels = jnp.argmax(clf.logits(images), axis=-1)
  assert clf.features(clf.variables, images).shape == (2, 8, 8, 64)
  wrapped_checks.assert_head_is_exact(clf, images)
  wrapped_checks.assert_every_method_runs(clf, images, labels)


def test_docs_cnn_without_apply_rng():
  def forward(x):
    x = jax.nn.relu(hk.Conv2D(16, 3)(x))
    x = hk.avg_pool(x, 2, 2, "VALID")
    x = jax.nn.relu(hk.Conv2D(32, 3)(x))
    return hk.Linear(4)(x.mean((1, 2)))

  transformed = hk.without_apply_rng(hk.transform(forward))
  images, labels = _images(), jnp.array([0, 3])
  params = transformed.init(jax.random.key(0), images)
  clf = salijax.wrap(transformed, params, layer="conv2_d_1")
  wrapped_checks.assert_head_is_exact(clf, images)
  wrapped_checks.assert_gradcam_matches(
      clf, _haiku_layer_forward(transformed, params, images, "conv2_d_1"), images, labels)
  wrapped_checks.assert_every_method_runs(clf, images, labels)
  assert [name for name, _ in layer_names(transformed, params, images)] == [
      "conv2_d", "conv2_d_1", "linear"]


def test_bad_haiku_input():
  transformed = _resnet(hk.nets.ResNet18)
  images = _images()
  params, state = transformed.init(jax.random.key(0), images)
  with pytest.raises(TypeError, match=r"\(params, state\)"):
    salijax.wrap(transformed, params, layer="res_net18/~/block_group_3")
  clf = salijax.wrap(transformed, (params, state), layer="res_net18/~/block_group_9",
                     call_kwargs={"is_training": False})
  with pytest.raises(ValueError, match="block_group_9.*res_net18/~/initial_conv"):
    methods.gradcam(clf, images, jnp.array([0, 1]))
