"""salijax.wrap on Equinox modules built from Equinox's own layers: one image per call
(the Equinox convention, vmapped by salijax) and a batched module."""

import jax
import jax.numpy as jnp
import pytest
import wrapped_checks

import salijax

eqx = wrapped_checks.extra_module("equinox")

_images = wrapped_checks.random_images


def _cnn(key):
  """The CNN of Equinox's documentation, shaped for 32x32 RGB images and 5 classes."""
  k1, k2, k3 = jax.random.split(key, 3)
  return eqx.nn.Sequential([
      eqx.nn.Conv2d(3, 8, kernel_size=3, padding=1, key=k1),
      eqx.nn.Lambda(jax.nn.relu),
      eqx.nn.MaxPool2d(kernel_size=2, stride=2),
      eqx.nn.Conv2d(8, 16, kernel_size=3, padding=1, key=k2),
      eqx.nn.Lambda(jax.nn.relu),
      eqx.nn.AdaptiveAvgPool2d(1),
      eqx.nn.Lambda(jnp.ravel),
      eqx.nn.Linear(16, 5, key=k3),
  ])


def _equinox_layer_forward(model, index, inputs, batched):
  """The test's own reading of model.layers[index]: replace it by conv + delta (NHWC delta)."""

  def layer_forward(delta):
    seen = []

    def tapped(layer):
      def call(x, *, key=None):
        out = layer(x)
        seen.append(jnp.moveaxis(out, -3, -1))
        return out if delta is None else out + jnp.moveaxis(delta, -1, -3)
      return eqx.nn.Lambda(call)

    if batched:
      logits = eqx.tree_at(lambda m: m.layers[index], model, replace_fn=tapped)(inputs)
      return logits, seen[0]
    outs = []
    for i in range(inputs.shape[0]):
      d = None if delta is None else delta[i]
      layer = model.layers[index]

      def call(x, *, key=None, d=d, layer=layer):
        out = layer(x)
        seen.append(jnp.moveaxis(out, -3, -1))
        return out if d is None else out + jnp.moveaxis(d, -1, -3)

      outs.append(eqx.tree_at(lambda m: m.layers[index], model,
                              replace=eqx.nn.Lambda(call))(inputs[i]))
    return jnp.stack(outs), jnp.stack(seen)

  return layer_forward


def test_one_image_module_is_vmapped():
  model = _cnn(jax.random.key(0))
  images, labels = _images(), jnp.array([4, 0])
  clf = salijax.wrap(model, layer=lambda m: m.layers[3],
                     preprocess=salijax.wrapping.Preprocess(channels_first=True))
  assert clf.features(clf.variables, images).shape == (2, 16, 16, 16)
  wrapped_checks.assert_head_is_exact(clf, images)
  wrapped_checks.assert_gradcam_matches(
      clf, _equinox_layer_forward(model, 3, jnp.moveaxis(images, -1, 1), batched=False),
      images, labels)
  wrapped_checks.assert_every_method_runs(clf, images, labels)


class Batched(eqx.Module):
  """A layer of a batched module: maps a batch NCHW by vmapping its Equinox layer."""

  layer: eqx.Module

  def __call__(self, x):
    return jax.vmap(self.layer)(x)


class BatchedCNN(eqx.Module):
  """An Equinox module that takes a batch NCHW: `_cnn`'s layers, each batched."""

  layers: tuple

  def __init__(self, cnn):
    self.layers = tuple(Batched(layer) for layer in cnn.layers)

  def __call__(self, x):
    for layer in self.layers:
      x = layer(x)
    return x


def test_batched_module():
  cnn = _cnn(jax.random.key(0))
  model = BatchedCNN(cnn)
  images, labels = _images(), jnp.array([2, 3])
  channels_first = salijax.wrapping.Preprocess(channels_first=True)
  clf = salijax.wrap(model, layer=lambda m: m.layers[3], batched=True, layer_layout="NCHW",
                     preprocess=channels_first)
  wrapped_checks.assert_head_is_exact(clf, images)
  wrapped_checks.assert_gradcam_matches(
      clf, _equinox_layer_forward(cnn, 3, jnp.moveaxis(images, -1, 1), batched=False),
      images, labels)
  inside_vmap = salijax.wrap(model, layer=lambda m: m.layers[3].layer, batched=True,
                             preprocess=channels_first)
  with pytest.raises(ValueError, match="runs inside the model's own jax.vmap"):
    inside_vmap.features(inside_vmap.variables, images)


def test_bad_equinox_input():
  model = _cnn(jax.random.key(0))
  with pytest.raises(TypeError, match="eqx.tree_at"):
    salijax.wrap(model, layer="layers.3")
  with pytest.raises(ValueError, match="found no submodule.*IndexError"):
    salijax.wrap(model, layer=lambda m: m.layers[30])
  with pytest.raises(ValueError, match="holds its own"):
    salijax.wrap(model, {"w": 1}, layer=lambda m: m.layers[3])
  with pytest.raises(ValueError, match="batched: only for Equinox"):
    salijax.wrap(lambda x: x, batched=True)
