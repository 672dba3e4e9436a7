"""Tests of salijax.methods.lime against a slow reference that follows docs/methods.md#lime."""

import functools

import float_tolerance
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.ndimage as ndi
import skimage.segmentation
import tiny_classifiers
import weighted_ridge_test

from salijax import methods
from salijax.methods.lime import kept_segments, lime
from salijax.methods.slic import slic, slic_grid

SIZE = 32
REGION = (8, 20, 8, 20)
SLIC_ARGS = dict(num_segments=12, compactness=10.0, sigma=1.0)


def _softmax(logits):
  e = np.exp(logits - logits.max())
  return e / e.sum()


def _reference(clf, image, label, segments, keep, *, kernel_width=0.25, alpha=1.0, fill):
  """LIME of one image, one sample at a time: numpy, float64, only the segments present.

  Returns the map and a bound on its float32 rounding error (random_cnn).
  """
  present = np.unique(segments)
  z = keep[:, present]  # bool[S,n]: the samples restricted to the image's segments
  apply = jax.jit(clf.apply)
  terms = jax.jit(functools.partial(tiny_classifiers.logit_terms, clf))
  n = tiny_classifiers.random_cnn_terms(SIZE // 4, SIZE // 4) + 8  # + filling, perturbing
  scores, score_atol = [], []
  for sample in z:
    shown = np.isin(segments, present[sample])[..., None]
    perturbed = np.where(shown, image, fill).astype(np.float32)[None]
    logits = np.asarray(apply(clf.variables, perturbed), np.float64)[0]
    scores.append(_softmax(logits)[label])
    # Logits within dz of exact make softmax probabilities within p (2 dz + ...).
    dz = float_tolerance.sum_atol(terms(perturbed), n)
    score_atol.append(scores[-1] * (2 * dz + (len(logits) + 3) * float_tolerance.EPS))
  scores = np.array(scores)
  kept = z.sum(axis=1)
  cosine = np.where(kept > 0, kept / np.sqrt(np.maximum(kept, 1) * len(present)), 0.0)
  weights = np.sqrt(np.exp(-(1.0 - cosine) ** 2 / kernel_width ** 2))
  # Weighted ridge with an unpenalised intercept as one least-squares problem.
  design = np.concatenate([z.astype(np.float64), np.ones((len(z), 1))], axis=1)
  penalty = np.concatenate([np.sqrt(alpha) * np.eye(len(present)),
                            np.zeros((len(present), 1))], axis=1)
  solution, *_ = np.linalg.lstsq(
      np.concatenate([np.sqrt(weights)[:, None] * design, penalty]),
      np.concatenate([np.sqrt(weights) * scores, np.zeros(len(present))]), rcond=None)
  out = np.zeros(segments.shape)
  for column, segment in enumerate(present):
    out[segments == segment] = solution[column]
  coef_atol, _ = weighted_ridge_test.ridge_atol(z, scores, weights, alpha, score_atol)
  return out, coef_atol


def _reference_maps(clf, images, labels, key, num_samples, hide, segmentation):
  """The slow reference's maps of `images` (LIME's other arguments at their defaults, 12
  segments), and the largest rounding bound."""
  if segmentation == "skimage":
    segments = [skimage.segmentation.slic(image, n_segments=12, compactness=10.0, sigma=1.0,
                                          start_label=0) for image in images]
  else:
    segments = np.asarray(jax.jit(jax.vmap(functools.partial(slic, **SLIC_ARGS)))(images))
  keep = np.asarray(kept_segments(key, jnp.arange(num_samples), 64))
  maps, atol = [], 0.0
  for image, label, image_segments in zip(images, labels, segments, strict=True):
    fill = {"mean": image.mean(axis=(0, 1)), "black": np.zeros(3),
            "blur": ndi.gaussian_filter(image, (5, 5, 0), mode="reflect", truncate=1.0)}[hide]
    want, want_atol = _reference(clf, image, label, image_segments, keep, fill=fill)
    maps.append(want)
    atol = max(atol, want_atol)
  return np.stack(maps), atol, segments


def _random_images(batch, seed):
  """Smooth random colour images f32[batch,SIZE,SIZE,3] (segments have some structure)."""
  noise = np.random.default_rng(seed).uniform(size=(batch, SIZE, SIZE, 3))
  return ndi.gaussian_filter(noise, (0, 2, 2, 0)).clip(0, 1).astype(np.float32)


def _scene(batch, seed):
  """A bright square exactly on REGION over a dark background, light noise."""
  rng = np.random.default_rng(seed)
  images = 0.25 + 0.02 * rng.normal(size=(batch, SIZE, SIZE, 3))
  y0, y1, x0, x1 = REGION
  images[:, y0:y1, x0:x1] = 0.75 + 0.02 * rng.normal(size=(batch, y1 - y0, x1 - x0, 3))
  return images.clip(0, 1).astype(np.float32)


@functools.cache
def _cnn():
  return tiny_classifiers.random_cnn(jax.random.key(3))


@pytest.mark.parametrize("segmentation,hide", [("skimage", "mean"), ("skimage", "blur"),
                                               ("jax", "black")])
def test_equals_slow_reference(segmentation, hide):
  clf, images, labels = _cnn(), _random_images(2, 0), np.array([1, 3], np.int32)
  key, num_samples = jax.random.key(7), 50
  maps = np.asarray(lime(clf, images, labels, key=key, num_samples=num_samples, chunk=24,
                         hide=hide, segmentation=segmentation, num_segments=12))
  want, atol, segments = _reference_maps(clf, images, labels, key, num_samples, hide,
                                         segmentation)
  if segmentation == "jax":
    grid_size = slic_grid(SIZE, SIZE, SLIC_ARGS["num_segments"]).size
    assert any(len(np.unique(s)) < grid_size for s in segments)  # empty labels are covered
  np.testing.assert_allclose(maps, want, rtol=0, atol=atol)


@pytest.mark.parametrize("channel", [None, 0])
def test_known_answer_region_classifier(channel):
  """> 75 % of |map| in the region (measured 0.80-0.98: SLIC puts a pixel or so of
  the square's edge into background segments, whose coefficient then also paints
  the background)."""
  clf = tiny_classifiers.region_classifier(SIZE, SIZE, REGION, channel=channel)
  images = _scene(2, 1)
  inside = np.zeros((SIZE, SIZE), bool)
  inside[REGION[0]:REGION[1], REGION[2]:REGION[3]] = True
  run = functools.partial(lime, clf, images, key=jax.random.key(0), num_samples=300,
                          num_segments=20)
  brighter, darker = (np.asarray(run(np.full(2, c, np.int32))) for c in (0, 1))
  for saliency in np.concatenate([brighter, darker]):
    assert np.abs(saliency)[inside].sum() > 0.75 * np.abs(saliency).sum()
  # Hiding the bright square darkens it: class 0 (rises with brightness) loses, class 1 gains.
  assert (brighter[:, inside].mean(axis=1) > 0).all()
  assert (darker[:, inside].mean(axis=1) < 0).all()


def test_same_map_whatever_the_batch_and_the_chunk():
  # Host segmentation keeps this test's compilations cheap; slic_test checks that the
  # JAX SLIC under vmap segments each image on its own.
  clf, images, labels = _cnn(), _random_images(2, 0), np.array([1, 3], np.int32)
  run = functools.partial(lime, clf, key=jax.random.key(7), num_samples=50, num_segments=12,
                          segmentation="skimage")
  batch = np.asarray(run(images, labels, chunk=24))  # as the reference test
  # Other programs, each within the reference's bound of the exact maps.
  atol = 2 * _reference_maps(clf, images, labels, jax.random.key(7), 50, "mean", "skimage")[1]
  alone = np.asarray(run(images[1:], labels[1:], chunk=24))
  np.testing.assert_allclose(alone[0], batch[1], rtol=0, atol=atol)
  chunked = np.asarray(run(images, labels, chunk=7))
  np.testing.assert_allclose(chunked, batch, rtol=0, atol=atol)


def test_second_batch_does_not_recompile():
  clf, labels = _cnn(), np.array([0, 2], np.int32)
  run = functools.partial(lime, clf, labels=labels, key=jax.random.key(1), num_samples=20,
                          chunk=8, segmentation="skimage", num_segments=12)
  run(_random_images(2, 5))


def test_under_a_user_jit():
  clf, images, labels = _cnn(), _random_images(2, 0), np.array([1, 3], np.int32)
  run = functools.partial(lime, clf, key=jax.random.key(7), num_samples=50, chunk=24,
                          hide="black", num_segments=12)
  atol = 2 * _reference_maps(clf, images, labels, jax.random.key(7), 50, "black", "jax")[1]
  np.testing.assert_allclose(jax.jit(run)(images, labels), run(images, labels), rtol=0,
                             atol=atol)


def test_kept_segments():
  key = jax.random.key(0)
  samples = jax.jit(kept_segments, static_argnums=2)
  keep = np.asarray(samples(key, jnp.arange(2000), 40))
  assert keep[0].all()  # sample 0 is the image itself
  assert abs(keep[1:].mean() - 0.5) < 0.01
  np.testing.assert_array_equal(np.asarray(samples(key, jnp.arange(2000), 20)),
                                keep[:, :20])  # independent of the number of segments
  np.testing.assert_array_equal(np.asarray(samples(key, jnp.arange(5, 9), 40)),
                                keep[5:9])  # a function of the sample index alone


def test_registered():
  assert methods.get("lime") is lime


def test_skimage_segmentation_needs_concrete_images():
  run = functools.partial(lime, _cnn(), key=jax.random.key(0), segmentation="skimage")
  with pytest.raises(ValueError, match="skimage"):
    jax.jit(run)(_random_images(1, 0), np.array([0], np.int32))
