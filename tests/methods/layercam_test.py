"""Tests of the gradient CAMs: LayerCAM against a slow reference and known answers."""

import cam_checks
import float_tolerance
import jax
import jax.numpy as jnp
import numpy as np
import tiny_classifiers
from cam_checks import REGION, SIZE

from salijax.methods.gradient_cams import layercam


def _reference(clf, image, label):
  """LayerCAM of one image, the formula position by position (float64), jax.grad per image.

  Returns the map and a bound on its float32 rounding error.
  """
  feats = clf.features(clf.variables, image[None])
  grads = jax.grad(lambda a: clf.head(clf.variables, a, image[None])[0, label])(feats)
  feats, grads = np.asarray(feats[0], np.float64), np.asarray(grads[0], np.float64)
  height, width, channels = feats.shape
  cam = np.zeros((height, width))
  for i in range(height):
    for j in range(width):
      cam[i, j] = max(sum(max(grads[i, j, k], 0.0) * feats[i, j, k] for k in range(channels)),
                      0.0)
  magnitude = np.maximum(grads, 0.0) * np.abs(feats)  # the map sums k of these per position
  terms = tiny_classifiers.random_cnn_terms(height, width, channels) + channels + 8
  return cam_checks.upsample(cam), float_tolerance.sum_atol(magnitude.sum(axis=-1), terms)


def test_equals_slow_reference_on_random_cnn():
  cam_checks.assert_equals_slow_reference(layercam, _reference)


def test_known_answer_on_region_classifier():
  """Linear head: g = readout[k, c] / (h w) everywhere. Class 0 (readout +1):
  L = sum_k A^k / (h w), inside the region. Class 1 (readout -1): zero."""
  clf = tiny_classifiers.region_classifier(SIZE, SIZE, REGION, channel=2)
  images = cam_checks.images(2, 2, 0.2, 1.0)
  maps = np.asarray(layercam(clf, images, jnp.array([0, 1])))
  feats = np.asarray(clf.features(clf.variables, images), np.float64)
  _, h, w, k = feats.shape
  want = cam_checks.upsample(feats[0].sum(axis=-1) / (h * w))
  n = tiny_classifiers.region_terms(h, w) + k + 8  # as in _reference
  np.testing.assert_allclose(maps[0], want, rtol=0, atol=float_tolerance.sum_atol(want, n))
  inside = cam_checks.region_mask()
  assert maps[0][inside].sum() > 0.8 * maps[0].sum() > 0
  np.testing.assert_array_equal(maps[1], 0.0)
