"""Tests of the gradient CAMs: XGrad-CAM against a slow reference and known answers."""

import cam_checks
import float_tolerance
import jax
import jax.numpy as jnp
import numpy as np
import tiny_classifiers
from cam_checks import REGION, SIZE

from salijax.methods.gradient_cams import xgradcam


def _reference(clf, image, label):
  """XGrad-CAM of one image, the formula channel by channel (float64), jax.grad per image.

  Returns the map and a bound on its float32 rounding error.
  """
  feats = clf.features(clf.variables, image[None])
  grads = jax.grad(lambda a: clf.head(clf.variables, a, image[None])[0, label])(feats)
  feats, grads = np.asarray(feats[0], np.float64), np.asarray(grads[0], np.float64)
  channels = feats.shape[-1]
  weights = np.zeros(channels)
  for k in range(channels):
    total = feats[..., k].sum()
    if total != 0:
      weights[k] = sum(a / total * g for a, g in zip(feats[..., k].ravel(),
                                                     grads[..., k].ravel(), strict=True))
  # w_k sums h w terms of one sign (g^k's sign is dense[k, c]'s), each through S_k (h w
  # more); the map sums k products.
  height, width, _ = feats.shape
  terms = tiny_classifiers.random_cnn_terms(height, width, channels) + 2 * height * width
  atol = float_tolerance.sum_atol(np.abs(feats) @ np.abs(weights), terms + channels + 8)
  return cam_checks.upsample(np.maximum(feats @ weights, 0.0)), atol


def test_equals_slow_reference_on_random_cnn():
  cam_checks.assert_equals_slow_reference(xgradcam, _reference)


def test_channel_summing_to_zero_gets_weight_zero():
  """A channel that is 0 everywhere (0 / 0) adds nothing and makes no NaN."""
  clf = tiny_classifiers.random_cnn(jax.random.key(0), num_classes=4)
  dead = clf.replace(features=lambda v, x: clf.features(v, x).at[..., 2].set(0.0))
  images, labels = cam_checks.images(3, 2), jnp.array([1, 2])
  got = np.asarray(xgradcam(dead, images, labels))
  assert np.isfinite(got).all() and got.max() > 0
  for b in range(2):
    want, atol = _reference(dead, images[b], int(labels[b]))
    np.testing.assert_allclose(got[b], want, rtol=0, atol=atol)


def test_known_answer_on_region_classifier():
  """Linear head: g = readout[k, c] / (h w) everywhere, so w_k = readout[k, c] / (h w)
  (Grad-CAM's weights). Class 0's map lies in the region; class 1's is zero."""
  clf = tiny_classifiers.region_classifier(SIZE, SIZE, REGION)
  images = cam_checks.images(2, 2, 0.2, 1.0)
  maps = np.asarray(xgradcam(clf, images, jnp.array([0, 1])))
  feats = np.asarray(clf.features(clf.variables, images), np.float64)
  _, h, w, k = feats.shape
  weights = np.asarray(clf.variables["readout"][:, 0], np.float64) / (h * w)
  n = tiny_classifiers.region_terms(h, w) + 2 * h * w + k + 8  # as in _reference
  want = cam_checks.upsample(np.maximum(feats[0] @ weights, 0.0))
  np.testing.assert_allclose(maps[0], want, rtol=0,
                             atol=float_tolerance.sum_atol(feats[0] @ np.abs(weights), n))
  inside = cam_checks.region_mask()
  assert maps[0][inside].sum() > 0.8 * maps[0].sum() > 0
  np.testing.assert_array_equal(maps[1], 0.0)
