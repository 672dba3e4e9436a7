"""Checks every wrapped model must pass: every method runs; Grad-CAM and the head are exact.

The Grad-CAM reference takes the layer's activation A and the gradient of the
target logit at that layer from the test's own reading of the model (each
framework test intercepts the layer with a zero `delta` added to its output:
d logit / d delta is the gradient at the layer), then

  L = ReLU(sum_k mean_ij(dy/dA_ij^k) A^k), upsampled bilinearly to H x W.

Both sides compute the same float32 operations in different compiled programs,
so they agree to rounding: a tolerance of 1e-4 of the map's range (atol) and
1e-4 relative covers the reordering of sums over a few thousand terms.
"""

import importlib
import os
from collections.abc import Callable
from types import ModuleType

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from salijax import methods
from salijax.classifier import Classifier

# Hyperparameters small enough for real networks on a CPU; the defaults are
# tested on small models in tests/methods.
FAST_OPTIONS = {
    "rise": {"num_masks": 64, "chunk": 32}, "lime": {"num_samples": 64, "num_segments": 16},
    "mask_search": {"num_steps": 20}, "integrated_gradients": {"steps": 8},
    "smoothgrad": {"num_samples": 4, "sample_chunk": 4}, "iba": {"steps": 3, "num_samples": 2},
}
LAYER_METHODS = ("ablation_cam", "eigencam", "gradcam", "gradcam_plus_plus", "guided_gradcam",
                 "iba", "layercam", "score_cam", "sidu", "sidu_feature_space", "xgradcam")


def extra_module(name: str) -> ModuleType:
  """The module `name` of the test extra: skips the test without it, fails in CI."""
  if os.environ.get("CI"):
    return importlib.import_module(name)
  return pytest.importorskip(name, reason="in the test extra")


def random_images(size: int = 32, batch: int = 2) -> jax.Array:
  """f32[batch,size,size,3] uniform in [0, 1], the same in every test."""
  return jax.random.uniform(jax.random.key(1), (batch, size, size, 3))


def assert_every_method_runs(clf: Classifier, images: jax.Array, labels: jax.Array,
                             skip: tuple[str, ...] = ()) -> None:
  """Every registered method (but `skip`) gives finite maps f32[B,H,W] on `clf`."""
  for name in methods.names():
    if name in skip:
      continue
    maps = methods.get(name)(clf, images, labels, key=jax.random.key(3),
                             **FAST_OPTIONS.get(name, {}))
    assert maps.shape == images.shape[:3], name
    assert maps.dtype == jnp.float32, name
    assert np.isfinite(np.asarray(maps)).all(), name


def assert_head_is_exact(clf: Classifier, images: jax.Array) -> None:
  """head(v, features(v, x), x) == apply(v, x), to float32 rounding."""
  feats = clf.features(clf.variables, images)
  logits = clf.apply(clf.variables, images)
  np.testing.assert_allclose(clf.head(clf.variables, feats, images), logits,
                             rtol=1e-5, atol=1e-5 * float(jnp.abs(logits).max()))


def reference_gradcam(layer_forward: Callable[[jax.Array], tuple[jax.Array, jax.Array]],
                      images: jax.Array, labels: jax.Array) -> jax.Array:
  """Grad-CAM from `layer_forward(delta) -> (logits f32[B,K], activation f32[B,h,w,c])`.

  `layer_forward` runs the model on `images` with `delta` added to the layer's
  output (channel-last) and returns the logits and the activation.
  """
  _, activation = layer_forward(None)

  def target(delta):
    logits, _ = layer_forward(delta)
    return jnp.take_along_axis(logits, labels[:, None], axis=1).sum()

  grads = jax.grad(target)(jnp.zeros_like(activation))
  weights = grads.mean(axis=(1, 2))
  cam = jax.nn.relu(jnp.einsum("bhwk,bk->bhw", activation, weights,
                               precision=jax.lax.Precision.HIGHEST))
  return jax.image.resize(cam, (cam.shape[0], *images.shape[1:3]), "bilinear")


def assert_gradcam_matches(clf: Classifier, layer_forward, images: jax.Array,
                           labels: jax.Array) -> None:
  """salijax's Grad-CAM on `clf` equals `reference_gradcam` (see the module doc)."""
  expected = np.asarray(reference_gradcam(layer_forward, images, labels))
  actual = np.asarray(methods.gradcam(clf, images, labels))
  assert expected.max() > 0  # a test that could fail: the map is not all zero
  np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-4 * float(expected.max()))
