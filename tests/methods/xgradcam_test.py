"""Tests of salijax.methods.xgradcam against a slow reference and known answers."""

import float_tolerance
import jax
import jax.numpy as jnp
import numpy as np
import tiny_classifiers
from skimage.transform import resize

from salijax.methods.xgradcam import xgradcam

SIZE = 32
REGION = (8, 20, 12, 28)


def _images(seed, batch, low=0.0, high=1.0):
  return jax.random.uniform(jax.random.key(seed), (batch, SIZE, SIZE, 3), minval=low,
                            maxval=high)


def _upsample(cam):
  return resize(cam, (SIZE, SIZE), order=1, mode="edge", anti_aliasing=False)


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
  return _upsample(np.maximum(feats @ weights, 0.0)), atol


def map_atol(clf, images, labels):
  """The largest rounding bound of the maps of `images` (also for layer_cam_common_test)."""
  return max(_reference(clf, images[b], int(labels[b]))[1] for b in range(len(labels)))


def test_equals_slow_reference_on_random_cnn():
  clf = tiny_classifiers.random_cnn(jax.random.key(0), num_classes=4)
  images, labels = _images(1, 3), jnp.array([0, 3, 2])
  got = xgradcam(clf, images, labels)
  assert got.shape == (3, SIZE, SIZE) and got.dtype == jnp.float32
  for b in range(3):
    want, atol = _reference(clf, images[b], int(labels[b]))
    assert want.max() > 0
    np.testing.assert_allclose(got[b], want, rtol=0, atol=atol)


def test_channel_summing_to_zero_gets_weight_zero():
  """A channel that is 0 everywhere (0 / 0) adds nothing and makes no NaN."""
  clf = tiny_classifiers.random_cnn(jax.random.key(0), num_classes=4)
  dead = clf.replace(features=lambda v, x: clf.features(v, x).at[..., 2].set(0.0))
  images, labels = _images(3, 2), jnp.array([1, 2])
  got = np.asarray(xgradcam(dead, images, labels))
  assert np.isfinite(got).all() and got.max() > 0
  for b in range(2):
    want, atol = _reference(dead, images[b], int(labels[b]))
    np.testing.assert_allclose(got[b], want, rtol=0, atol=atol)


def test_known_answer_on_region_classifier():
  """Linear head: g = readout[k, c] / (h w) everywhere, so w_k = readout[k, c] / (h w)
  (Grad-CAM's weights). Class 0's map lies in the region; class 1's is zero."""
  clf = tiny_classifiers.region_classifier(SIZE, SIZE, REGION)
  images = _images(2, 2, 0.2, 1.0)
  maps = np.asarray(xgradcam(clf, images, jnp.array([0, 1])))
  feats = np.asarray(clf.features(clf.variables, images), np.float64)
  _, h, w, k = feats.shape
  weights = np.asarray(clf.variables["readout"][:, 0], np.float64) / (h * w)
  n = tiny_classifiers.region_terms(h, w) + 2 * h * w + k + 8  # as in _reference
  np.testing.assert_allclose(maps[0], _upsample(np.maximum(feats[0] @ weights, 0.0)), rtol=0,
                             atol=float_tolerance.sum_atol(feats[0] @ np.abs(weights), n))
  inside = np.zeros((SIZE, SIZE), bool)
  inside[REGION[0]:REGION[1], REGION[2]:REGION[3]] = True
  assert maps[0][inside].sum() > 0.8 * maps[0].sum() > 0
  np.testing.assert_array_equal(maps[1], 0.0)
