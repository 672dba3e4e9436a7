"""Tests of salijax.methods.score_cam against a slow reference and known answers."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import chunk_invariance
import tiny_classifiers
from skimage.transform import resize

from salijax import methods
from salijax.classifier import Classifier
from salijax.methods.score_cam import _score_cam, score_cam

SIZE = 32
REGION = (8, 20, 12, 28)


def _images(seed, batch, low=0.0, high=1.0):
  return jax.random.uniform(jax.random.key(seed), (batch, SIZE, SIZE, 3), minval=low,
                            maxval=high)


def _upsample(cam):
  return resize(np.asarray(cam, np.float64), (SIZE, SIZE), order=1, mode="edge",
                anti_aliasing=False)


def _softmax(logits):
  e = np.exp(logits - logits.max())
  return e / e.sum()


def _reference(clf, image, label):
  """Score-CAM of one image: one masked image per channel forwarded alone (float64 weights)."""
  apply = jax.jit(clf.apply)

  def probability(x):
    return _softmax(np.asarray(apply(clf.variables, jnp.asarray(x, jnp.float32)[None]),
                               np.float64)[0])[label]

  feats = np.asarray(clf.features(clf.variables, image[None]), np.float64)[0]
  baseline = probability(np.zeros_like(image))
  cam = np.zeros(feats.shape[:2])
  for k in range(feats.shape[-1]):
    mask = _upsample(feats[..., k])
    spread = mask.max() - mask.min()
    mask = (mask - mask.min()) / spread if spread > 0 else np.zeros_like(mask)
    cam += (probability(np.asarray(image) * mask[..., None]) - baseline) * feats[..., k]
  return _upsample(np.maximum(cam, 0.0))


@functools.cache
def _cnn():
  return tiny_classifiers.random_cnn(jax.random.key(0), num_classes=4)


def test_equals_slow_reference_on_random_cnn():
  images, labels = _images(1, 2), jnp.array([3, 1])
  got = score_cam(_cnn(), images, labels, chunk=4)  # 6 channels = 4 + 2 (+ 2 padding)
  assert got.shape == (2, SIZE, SIZE) and got.dtype == jnp.float32
  for b in range(2):
    want = _reference(_cnn(), images[b], int(labels[b]))
    assert want.max() > 0
    np.testing.assert_allclose(got[b], want, rtol=1e-4, atol=1e-5 * want.max())


def test_constant_channel_masks_nothing_and_weighs_zero():
  """A constant channel's mask is all zeros: the masked image is the black baseline (w = 0)."""
  constant = _cnn().replace(features=lambda v, x: _cnn().features(v, x).at[..., 1].set(0.3))
  images = _images(2, 4)
  labels = jnp.arange(4)
  got = np.asarray(score_cam(constant, images, labels, chunk=4))
  positive = 0
  for b in range(4):
    want = _reference(constant, images[b], b)
    positive += want.max() > 0
    np.testing.assert_allclose(got[b], want, rtol=1e-4, atol=1e-5 * max(want.max(), 1e-3))
  assert positive >= 2


def test_known_answer_on_region_classifier():
  """Masks are 0 outside the region (up to bilinear spill); the black baseline gives 0
  features, uniform probabilities. Class 0 rises with the region's brightness."""
  clf = tiny_classifiers.region_classifier(SIZE, SIZE, REGION)
  images = _images(3, 2, 0.2, 1.0)
  maps = np.asarray(score_cam(clf, images, jnp.array([0, 0])))
  inside = np.zeros((SIZE, SIZE), bool)
  inside[REGION[0]:REGION[1], REGION[2]:REGION[3]] = True
  for saliency in maps:
    assert saliency[inside].sum() > 0.8 * saliency.sum() > 0


def test_same_map_whatever_the_batch_the_chunk_jit_and_vmap():
  chunk_invariance.check_same_map_whatever_the_batch_the_chunk_jit_and_vmap(
      functools.partial(score_cam, _cnn()), _score_cam, _images(4, 3), jnp.array([0, 1, 3]),
      _images(5, 3))
  assert methods.get("score_cam") is score_cam


@pytest.mark.parametrize("chunk", [0, -2, 1.5, True, "4"])
def test_bad_chunk(chunk):
  with pytest.raises(ValueError, match="chunk"):
    score_cam(_cnn(), _images(0, 1), jnp.array([0]), chunk=chunk)


def test_bad_inputs():
  images, labels = _images(0, 2), jnp.array([0, 1])
  no_features = Classifier(variables=_cnn().variables, apply=_cnn().apply)
  with pytest.raises(ValueError, match="clf: Score-CAM needs a Classifier with `features`"):
    score_cam(no_features, images, labels)
  with pytest.raises(ValueError, match="labels"):
    score_cam(_cnn(), images, jnp.array([0, 4]))
  with pytest.raises(ValueError, match="images"):
    score_cam(_cnn(), images * 2.0, labels)
  with pytest.raises(ValueError, match="images"):
    score_cam(_cnn(), images[0], labels)
  with pytest.raises(TypeError, match="clf"):
    score_cam(_cnn().apply, images, labels)
