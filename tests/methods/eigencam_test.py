"""Tests of salijax.methods.eigencam against numpy's SVD and known answers."""

import cam_checks
import float_tolerance
import jax
import jax.numpy as jnp
import numpy as np
import tiny_classifiers
from cam_checks import REGION, SIZE

from salijax.classifier import Classifier
from salijax.methods.eigencam import eigencam


def svd_atol(singular, n):
  """Bound on the float32 error of A v_1 (entrywise, <= its 2-norm): a backward stable SVD
  is exact for A + E, |E| <= n eps sigma_1, which turns v_1 by <= |E| / (sigma_1 - sigma_2)
  (Wedin's sin-theta theorem)."""
  error = float_tolerance.sum_atol(singular[0], n)
  return error * (1 + 2 * singular[0] / (singular[0] - singular[1]))


def _reference(feats, n):
  """Eigen-CAM of activations f32[h,w,k]: numpy's SVD (float64), the sign rule, ReLU; and a
  bound on its float32 rounding error, n being the terms summed on the way to an entry."""
  height, width, channels = feats.shape
  flat = np.asarray(feats, np.float64).reshape(height * width, channels)
  _, singular, right = np.linalg.svd(flat)
  projection = flat @ right[0]
  if projection @ flat.mean(axis=1) < 0:
    projection = -projection
  return (cam_checks.upsample(np.maximum(projection, 0.0).reshape(height, width)),
          svd_atol(singular, n))


def _rank_one_classifier(direction):
  """Features A_ij = brightness_ij * direction (rank one): Eigen-CAM = brightness * |direction|
  when the direction is positive."""
  direction = jnp.asarray(direction, jnp.float32)

  def features(v, images):
    stride = tiny_classifiers.STRIDE
    b, h, w, _ = images.shape
    brightness = images.mean(axis=-1).reshape(b, h // stride, stride, w // stride,
                                              stride).mean(axis=(2, 4))
    return brightness[..., None] * v["direction"]

  def head(v, feats, images):
    del images
    return feats.mean(axis=(1, 2))[:, :2]

  return Classifier(variables={"direction": direction},
                    apply=lambda v, x: head(v, features(v, x), x), features=features, head=head)


def test_equals_numpy_svd_on_random_cnn():
  clf = tiny_classifiers.random_cnn(jax.random.key(0), num_classes=4, channels=10)
  images = cam_checks.images(1, 3)
  got = eigencam(clf, images, jnp.array([0, 3, 2]))
  assert got.shape == (3, SIZE, SIZE) and got.dtype == jnp.float32
  feats = np.asarray(clf.features(clf.variables, images))
  _, h, w, k = feats.shape
  n = tiny_classifiers.random_cnn_terms(h, w, k) + h * w + k  # the SVD sums h w and k terms
  for b in range(3):
    want, atol = _reference(feats[b], n)
    assert want.max() > 0
    np.testing.assert_allclose(got[b], want, rtol=0, atol=atol)


def test_rank_one_activations_and_the_sign_rule():
  """A = u d^T: P = u |d| for d > 0; for d < 0 the channel mean is negative, the sign rule
  keeps P = -u |d| <= 0 (agreeing with the mean map), and the map is zero."""
  direction = np.array([0.5, 2.0, 1.0, 0.25], np.float32)
  images = cam_checks.images(2, 2, 0.1, 1.0)
  positive = _rank_one_classifier(direction)
  got = np.asarray(eigencam(positive, images, jnp.array([0, 1])))
  brightness = np.asarray(positive.features(positive.variables, images))[..., 0] / direction[0]
  _, h, w = brightness.shape
  for b in range(2):
    singular = np.linalg.norm(brightness[b]) * np.linalg.norm(direction), 0.0
    # The SVD sums h w and k terms, the brightness 48 (4 x 4 x 3 pixels).
    want = cam_checks.upsample(brightness[b] * np.linalg.norm(direction))
    np.testing.assert_allclose(got[b], want, rtol=0,
                               atol=svd_atol(singular, h * w + len(direction) + 48))
  negative = np.asarray(eigencam(_rank_one_classifier(-direction), images, jnp.array([0, 1])))
  np.testing.assert_array_equal(negative, 0.0)


def test_known_answer_on_region_classifier_and_class_agnostic():
  clf = tiny_classifiers.region_classifier(SIZE, SIZE, REGION)
  images = cam_checks.images(3, 2, 0.2, 1.0)
  maps = np.asarray(eigencam(clf, images, jnp.array([0, 1])))
  inside = cam_checks.region_mask()
  for saliency in maps:
    assert saliency[inside].sum() > 0.8 * saliency.sum() > 0
  np.testing.assert_array_equal(eigencam(clf, images, jnp.array([2, 2])), maps)
