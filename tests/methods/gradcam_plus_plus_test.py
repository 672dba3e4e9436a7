"""Tests of the gradient CAMs: Grad-CAM++ against a slow reference and known answers."""

import cam_checks
import float_tolerance
import jax
import jax.numpy as jnp
import numpy as np
import tiny_classifiers
from cam_checks import REGION, SIZE

from salijax.methods.gradient_cams import gradcam_plus_plus


def _reference(clf, image, label):
  """Grad-CAM++ of one image, the formula position by position (float64), jax.grad per image.

  Returns the map and a bound on its float32 rounding error.
  """
  feats = clf.features(clf.variables, image[None])
  grads = jax.grad(lambda a: clf.head(clf.variables, a, image[None])[0, label])(feats)
  feats, grads = np.asarray(feats[0], np.float64), np.asarray(grads[0], np.float64)
  height, width, channels = feats.shape
  weights = np.zeros(channels)
  for k in range(channels):
    total = feats[..., k].sum()
    for i in range(height):
      for j in range(width):
        g = grads[i, j, k]
        denominator = 2 * g ** 2 + total * g ** 3
        alpha = g ** 2 / denominator if denominator != 0 else 0.0
        weights[k] += alpha * max(g, 0.0)
  # w_k sums h w terms of one sign, each through S_k (h w more); the map sums k products.
  terms = tiny_classifiers.random_cnn_terms(height, width, channels) + 2 * height * width
  atol = float_tolerance.sum_atol(np.abs(feats) @ np.abs(weights), terms + channels + 8)
  return cam_checks.upsample(np.maximum(feats @ weights, 0.0)), atol


def test_equals_slow_reference_on_random_cnn():
  cam_checks.assert_equals_slow_reference(gradcam_plus_plus, _reference)


def test_known_answer_on_region_classifier():
  """Linear head: g = readout[k, c] / (h w) =: gamma_k everywhere, so
  alpha = 1 / (2 + S_k gamma_k) and w_k = h w gamma_k / (2 + mean_ij A^k) for class 0.

  Channel 0's readout is set to 0: its gradient is 0, the denominator 0, its
  weight 0 (no NaN). Class 1 (gamma < 0) gets no positive gradient: a zero map.
  """
  clf = tiny_classifiers.region_classifier(SIZE, SIZE, REGION)
  readout = clf.variables["readout"].at[0, 0].set(0.0)
  clf = clf.replace(variables={**clf.variables, "readout": readout})
  images = cam_checks.images(2, 2, 0.2, 1.0)
  maps = np.asarray(gradcam_plus_plus(clf, images, jnp.array([0, 1])))
  feats = np.asarray(clf.features(clf.variables, images), np.float64)
  weights = np.asarray(readout[:, 0], np.float64) / (2.0 + feats[0].mean(axis=(0, 1)))
  assert weights[0] == 0 and (weights[1:] > 0).all()
  _, h, w, k = feats.shape
  n = tiny_classifiers.region_terms(h, w) + 2 * h * w + k + 8  # as in _reference
  want = cam_checks.upsample(np.maximum(feats[0] @ weights, 0.0))
  np.testing.assert_allclose(maps[0], want, rtol=0,
                             atol=float_tolerance.sum_atol(feats[0] @ np.abs(weights), n))
  inside = cam_checks.region_mask()
  assert maps[0][inside].sum() > 0.8 * maps[0].sum() > 0
  np.testing.assert_array_equal(maps[1], 0.0)
