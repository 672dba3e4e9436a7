"""Tests of salijax.methods.layercam against a slow reference and known answers."""

import float_tolerance
import jax
import jax.numpy as jnp
import numpy as np
import tiny_classifiers
from skimage.transform import resize

from salijax.methods.layercam import layercam

SIZE = 32
REGION = (8, 20, 12, 28)


def _images(seed, batch, low=0.0, high=1.0):
  return jax.random.uniform(jax.random.key(seed), (batch, SIZE, SIZE, 3), minval=low,
                            maxval=high)


def _upsample(cam):
  return resize(cam, (SIZE, SIZE), order=1, mode="edge", anti_aliasing=False)


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
  return _upsample(cam), float_tolerance.sum_atol(magnitude.sum(axis=-1), terms)


def map_atol(clf, images, labels):
  """The largest rounding bound of the maps of `images` (also for layer_cam_common_test)."""
  return max(_reference(clf, images[b], int(labels[b]))[1] for b in range(len(labels)))


def test_equals_slow_reference_on_random_cnn():
  clf = tiny_classifiers.random_cnn(jax.random.key(0), num_classes=4)
  images, labels = _images(1, 3), jnp.array([0, 3, 2])
  got = layercam(clf, images, labels)
  assert got.shape == (3, SIZE, SIZE) and got.dtype == jnp.float32
  for b in range(3):
    want, atol = _reference(clf, images[b], int(labels[b]))
    assert want.max() > 0
    np.testing.assert_allclose(got[b], want, rtol=0, atol=atol)


def test_known_answer_on_region_classifier():
  """Linear head: g = readout[k, c] / (h w) everywhere. Class 0 (readout +1):
  L = sum_k A^k / (h w), inside the region. Class 1 (readout -1): zero."""
  clf = tiny_classifiers.region_classifier(SIZE, SIZE, REGION, channel=2)
  images = _images(2, 2, 0.2, 1.0)
  maps = np.asarray(layercam(clf, images, jnp.array([0, 1])))
  feats = np.asarray(clf.features(clf.variables, images), np.float64)
  _, h, w, k = feats.shape
  want = _upsample(feats[0].sum(axis=-1) / (h * w))
  n = tiny_classifiers.region_terms(h, w) + k + 8  # as in _reference
  np.testing.assert_allclose(maps[0], want, rtol=0, atol=float_tolerance.sum_atol(want, n))
  inside = np.zeros((SIZE, SIZE), bool)
  inside[REGION[0]:REGION[1], REGION[2]:REGION[3]] = True
  assert maps[0][inside].sum() > 0.8 * maps[0].sum() > 0
  np.testing.assert_array_equal(maps[1], 0.0)
