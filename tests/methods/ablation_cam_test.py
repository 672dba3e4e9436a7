"""Tests of salijax.methods.ablation_cam against a slow reference and known answers."""

import functools

import cam_checks
import chunk_invariance
import float_tolerance
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tiny_classifiers
from cam_checks import REGION, SIZE

from salijax import methods
from salijax.methods.ablation_cam import ablation_cam


def _skip(images):
  """f32[B,h,w,1]: the mean of each 4x4 cell of the images (_skip_cnn's skip path)."""
  b, stride = images.shape[0], tiny_classifiers.STRIDE
  return images.reshape(b, SIZE // stride, stride, SIZE // stride, stride, 3).mean(
      axis=(2, 4, 5))[..., None]


def _reference(clf, image, label, skip=False):
  """Ablation-CAM of one image: the head called once per zeroed channel (float64 weights).

  Returns the map and a bound on its float32 rounding error (`skip`: clf is _skip_cnn).
  """
  feats = np.asarray(clf.features(clf.variables, image[None]))

  def logit(a):
    return float(clf.head(clf.variables, jnp.asarray(a), image[None])[0, label])

  target = logit(feats)
  weights = np.zeros(feats.shape[-1])
  for k in range(feats.shape[-1]):
    ablated = feats.copy()
    ablated[..., k] = 0.0
    weights[k] = (target - logit(ablated)) / target
  feats = np.asarray(feats[0], np.float64)
  # Each logit (target or ablated) errs by <= delta: 3 mean tanh(head input) @ dense has
  # terms of magnitude |tanh| |dense|, summed along random_cnn's way (+ 48: the skip's mean).
  inputs = feats + (np.asarray(_skip(image[None]))[0] - 0.5 if skip else 0.0)
  tanh = np.maximum(np.abs(np.tanh(inputs)), np.abs(np.tanh(inputs - feats)))
  dense = np.abs(np.asarray(clf.variables["dense"], np.float64)[:, label])
  height, width, channels = feats.shape
  terms = tiny_classifiers.random_cnn_terms(height, width, channels) + 48 * skip
  delta = float_tolerance.sum_atol(3 * tanh.mean(axis=(0, 1)) @ dense, terms)
  # w_k = (y - y^k) / y then errs by <= delta (2 + |w_k|) / |y|; the map sums k terms more.
  atol = (np.abs(feats) @ (delta * (2 + np.abs(weights)) / abs(target))).max()
  atol += float_tolerance.sum_atol(np.abs(feats) @ np.abs(weights), terms + channels + 4)
  return cam_checks.upsample(np.maximum(feats @ weights, 0.0)), atol


@functools.cache
def _cnn():
  return tiny_classifiers.random_cnn(jax.random.key(0), num_classes=4)


@functools.cache
def _skip_cnn():
  """random_cnn whose head also reads the images (a skip path, as inside a residual block)."""
  clf = _cnn()

  def head(v, feats, images):
    return clf.head(v, feats + _skip(images) - 0.5, images)

  return clf.replace(head=head, apply=lambda v, x: head(v, clf.features(v, x), x))


@pytest.mark.parametrize("classifier, skip", [(_cnn, False), (_skip_cnn, True)])
def test_equals_slow_reference(classifier, skip):
  clf = classifier()
  images, labels = cam_checks.images(1, 3), jnp.array([3, 1, 0])
  got = ablation_cam(clf, images, labels, chunk=4)  # 6 channels = 4 + 2 (+ 2 padding)
  assert got.shape == (3, SIZE, SIZE) and got.dtype == jnp.float32
  positive = 0
  for b in range(3):
    want, atol = _reference(clf, images[b], int(labels[b]), skip)
    positive += want.max() > 0
    np.testing.assert_allclose(got[b], want, rtol=0, atol=atol)
  assert positive >= 2


def test_known_answer_on_region_classifier():
  """Linear head: y_c - y_c^k = readout[k, c] mean(A^k). Class 0 (readout +1):
  w_k = mean(A^k) / sum_j mean(A^j), inside the region. Class 1 (readout -1) has a
  negative logit: the division by y_c flips the signs back, the same map. Class 2's
  readout is set to 0: y_c = 0 and the map is zero (no NaN)."""
  clf = tiny_classifiers.region_classifier(SIZE, SIZE, REGION)
  readout = clf.variables["readout"].at[:, 2].set(0.0)
  clf = clf.replace(variables={**clf.variables, "readout": readout})
  images = jnp.repeat(cam_checks.images(2, 1, 0.2, 1.0), 3, axis=0)
  maps = np.asarray(ablation_cam(clf, images, jnp.array([0, 1, 2])))
  feats = np.asarray(clf.features(clf.variables, images[:1]), np.float64)[0]
  means = feats.mean(axis=(0, 1))
  # y_c - y_c^k cancels all of y_c but mean(A^k): w_k errs by (2 + w_k) <= 3 times the logits'
  # relative bound, so the map by that times sum_k A^k (terms >= 0), not relative to itself.
  h, w, k = feats.shape
  atol = float_tolerance.sum_atol(feats.sum(axis=-1), 3 * tiny_classifiers.region_terms(h, w)
                                  + k + 4)
  np.testing.assert_allclose(maps[0], cam_checks.upsample(feats @ (means / means.sum())), rtol=0,
                             atol=atol)
  inside = cam_checks.region_mask()
  assert maps[0][inside].sum() > 0.8 * maps[0].sum() > 0
  np.testing.assert_allclose(maps[1], maps[0], rtol=0, atol=2 * atol)
  np.testing.assert_array_equal(maps[2], 0.0)


def test_same_map_whatever_the_batch_the_chunk_jit_and_vmap():
  images, labels = cam_checks.images(4, 3), jnp.array([0, 1, 3])
  # Two programs, each within the reference's rounding bound of the exact map.
  atol = 2 * max(_reference(_skip_cnn(), images[b], int(labels[b]), skip=True)[1]
                 for b in range(3))
  chunk_invariance.check_same_map_whatever_the_batch_the_chunk_jit_and_vmap(
      functools.partial(ablation_cam, _skip_cnn()), images, labels, atol)
  assert methods.get("ablation_cam") is ablation_cam
