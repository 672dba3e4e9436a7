"""Tests of salijax.methods.score_cam against a slow reference and known answers."""

import functools

import cam_checks
import chunk_invariance
import float_tolerance
import jax
import jax.numpy as jnp
import numpy as np
import tiny_classifiers
from cam_checks import REGION, SIZE
from skimage.transform import resize

from salijax import methods
from salijax.methods.score_cam import score_cam


def _upsample(cam):
  return resize(np.asarray(cam, np.float64), (SIZE, SIZE), order=1, mode="edge",
                anti_aliasing=False)


def _softmax(logits):
  e = np.exp(logits - logits.max())
  return e / e.sum()


def _reference(clf, image, label):
  """Score-CAM of one image: one masked image per channel forwarded alone (float64 weights).

  Returns the map and a bound on its float32 rounding error.
  """
  apply = jax.jit(clf.apply)
  feats = np.asarray(clf.features(clf.variables, image[None]), np.float64)[0]
  height, width, channels = feats.shape
  # Masks and masking add a few roundings to the pixels random_cnn's logits start from.
  terms = tiny_classifiers.random_cnn_terms(height, width, channels) + 8

  def probability(x):
    """f_c(x) and its error bound: softmax turns logit errors <= dz into <= f_c (2 dz + ...)."""
    x = jnp.asarray(x, jnp.float32)[None]
    logits = np.asarray(apply(clf.variables, x), np.float64)[0]
    dz = float_tolerance.sum_atol(tiny_classifiers.logit_terms(clf, x), terms)
    p = _softmax(logits)[label]
    return p, p * (2 * dz + (len(logits) + 3) * float_tolerance.EPS)

  baseline, baseline_error = probability(np.zeros_like(image))
  cam, error = np.zeros(feats.shape[:2]), np.zeros(feats.shape[:2])
  magnitude = np.zeros(feats.shape[:2])
  for k in range(channels):
    mask = _upsample(feats[..., k])
    spread = mask.max() - mask.min()
    mask = (mask - mask.min()) / spread if spread > 0 else np.zeros_like(mask)
    p, p_error = probability(np.asarray(image) * mask[..., None])
    cam += (p - baseline) * feats[..., k]
    error += (p_error + baseline_error) * np.abs(feats[..., k])
    magnitude += np.abs((p - baseline) * feats[..., k])
  atol = error.max() + float_tolerance.sum_atol(magnitude, terms + channels + 4)
  return _upsample(np.maximum(cam, 0.0)), atol


@functools.cache
def _cnn():
  return tiny_classifiers.random_cnn(jax.random.key(0), num_classes=4)


def test_equals_slow_reference_on_random_cnn():
  images, labels = cam_checks.images(1, 2), jnp.array([3, 1])
  got = score_cam(_cnn(), images, labels, chunk=4)  # 6 channels = 4 + 2 (+ 2 padding)
  assert got.shape == (2, SIZE, SIZE) and got.dtype == jnp.float32
  for b in range(2):
    want, atol = _reference(_cnn(), images[b], int(labels[b]))
    assert want.max() > 0
    np.testing.assert_allclose(got[b], want, rtol=0, atol=atol)


def test_constant_channel_masks_nothing_and_weighs_zero():
  """A constant channel's mask is all zeros: the masked image is the black baseline (w = 0)."""
  constant = _cnn().replace(features=lambda v, x: _cnn().features(v, x).at[..., 1].set(0.3))
  images = cam_checks.images(2, 4)
  labels = jnp.arange(4)
  got = np.asarray(score_cam(constant, images, labels, chunk=4))
  positive = 0
  for b in range(4):
    want, atol = _reference(constant, images[b], b)
    positive += want.max() > 0
    np.testing.assert_allclose(got[b], want, rtol=0, atol=atol)
  assert positive >= 2


def test_known_answer_on_region_classifier():
  """Masks are 0 outside the region (up to bilinear spill); the black baseline gives 0
  features, uniform probabilities. Class 0 rises with the region's brightness."""
  clf = tiny_classifiers.region_classifier(SIZE, SIZE, REGION)
  images = cam_checks.images(3, 2, 0.2, 1.0)
  maps = np.asarray(score_cam(clf, images, jnp.array([0, 0])))
  inside = cam_checks.region_mask()
  for saliency in maps:
    assert saliency[inside].sum() > 0.8 * saliency.sum() > 0


def test_same_map_whatever_the_batch_the_chunk_jit_and_vmap():
  images, labels = cam_checks.images(4, 3), jnp.array([0, 1, 3])
  # Two programs, each within the reference's rounding bound of the exact map.
  atol = 2 * max(_reference(_cnn(), images[b], int(labels[b]))[1] for b in range(3))
  chunk_invariance.check_same_map_whatever_the_batch_the_chunk_jit_and_vmap(
      functools.partial(score_cam, _cnn()), images, labels, atol)
  assert methods.get("score_cam") is score_cam
