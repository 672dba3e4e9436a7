"""Tests of salijax.methods.gradcam_plus_plus against a slow reference and known answers."""

import float_tolerance
import jax
import jax.numpy as jnp
import numpy as np
import tiny_classifiers
from skimage.transform import resize

from salijax.methods.gradcam_plus_plus import gradcam_plus_plus

SIZE = 32
REGION = (8, 20, 12, 28)


def _images(seed, batch, low=0.0, high=1.0):
  return jax.random.uniform(jax.random.key(seed), (batch, SIZE, SIZE, 3), minval=low,
                            maxval=high)


def _upsample(cam):
  return resize(cam, (SIZE, SIZE), order=1, mode="edge", anti_aliasing=False)


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
  return _upsample(np.maximum(feats @ weights, 0.0)), atol


def map_atol(clf, images, labels):
  """The largest rounding bound of the maps of `images` (also for layer_cam_common_test)."""
  return max(_reference(clf, images[b], int(labels[b]))[1] for b in range(len(labels)))


def test_equals_slow_reference_on_random_cnn():
  clf = tiny_classifiers.random_cnn(jax.random.key(0), num_classes=4)
  images, labels = _images(1, 3), jnp.array([0, 3, 2])
  got = gradcam_plus_plus(clf, images, labels)
  assert got.shape == (3, SIZE, SIZE) and got.dtype == jnp.float32
  for b in range(3):
    want, atol = _reference(clf, images[b], int(labels[b]))
    assert want.max() > 0
    np.testing.assert_allclose(got[b], want, rtol=0, atol=atol)


def test_known_answer_on_region_classifier():
  """Linear head: g = readout[k, c] / (h w) =: gamma_k everywhere, so
  alpha = 1 / (2 + S_k gamma_k) and w_k = h w gamma_k / (2 + mean_ij A^k) for class 0.

  Channel 0's readout is set to 0: its gradient is 0, the denominator 0, its
  weight 0 (no NaN). Class 1 (gamma < 0) gets no positive gradient: a zero map.
  """
  clf = tiny_classifiers.region_classifier(SIZE, SIZE, REGION)
  readout = clf.variables["readout"].at[0, 0].set(0.0)
  clf = clf.replace(variables={**clf.variables, "readout": readout})
  images = _images(2, 2, 0.2, 1.0)
  maps = np.asarray(gradcam_plus_plus(clf, images, jnp.array([0, 1])))
  feats = np.asarray(clf.features(clf.variables, images), np.float64)
  weights = np.asarray(readout[:, 0], np.float64) / (2.0 + feats[0].mean(axis=(0, 1)))
  assert weights[0] == 0 and (weights[1:] > 0).all()
  _, h, w, k = feats.shape
  n = tiny_classifiers.region_terms(h, w) + 2 * h * w + k + 8  # as in _reference
  np.testing.assert_allclose(maps[0], _upsample(np.maximum(feats[0] @ weights, 0.0)), rtol=0,
                             atol=float_tolerance.sum_atol(feats[0] @ np.abs(weights), n))
  inside = np.zeros((SIZE, SIZE), bool)
  inside[REGION[0]:REGION[1], REGION[2]:REGION[3]] = True
  assert maps[0][inside].sum() > 0.8 * maps[0].sum() > 0
  np.testing.assert_array_equal(maps[1], 0.0)
