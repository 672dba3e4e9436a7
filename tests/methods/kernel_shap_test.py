"""Tests of salijax.methods.kernel_shap: the coalitions, exact on an additive model, efficiency,
known answer."""

import float_tolerance
import jax
import jax.numpy as jnp
import numpy as np
import scipy.ndimage as ndi
import skimage.segmentation
import tiny_classifiers
from integrated_gradients_test import linear_classifier

from salijax import methods
from salijax.methods.kernel_shap import coalition_weights, coalitions, kernel_shap
from salijax.methods.slic import slic_grid

SIZE = 32


def _smooth_images(batch, seed, size=SIZE):
  """Smooth random colour images f32[batch,size,size,3] (SLIC finds segments in them)."""
  noise = np.random.default_rng(seed).uniform(size=(batch, size, size, 3))
  return ndi.gaussian_filter(noise, (0, 2, 2, 0)).clip(0, 1).astype(np.float32)


def _fit_gain(key, segments, size, num_segments, num_samples):
  """max_j sum_s |P_js| of the weighted fit's solution phi = P y (float64): the factor by
  which it can amplify errors of the scores y."""
  columns = max(slic_grid(size, size, num_segments).size, int(segments.max()) + 1)
  present = np.zeros(-(-columns // 32) * 32, bool)
  present[np.unique(segments)] = True
  keep = np.asarray(coalitions(key, jnp.arange(num_samples), jnp.asarray(present)))
  z = keep[:, present].astype(np.float64)
  w = np.asarray(coalition_weights(jnp.asarray(keep), jnp.asarray(present)), np.float64)
  centred = z - w @ z / w.sum()
  solution = np.linalg.pinv(np.sqrt(w)[:, None] * centred) * np.sqrt(w)[None]
  return float(np.abs(solution).sum(1).max())


def test_coalitions_follow_the_shapley_kernel():
  present = jnp.asarray([True, False, True, True, True, False, True, True])  # M = 6 players
  keep = np.asarray(coalitions(jax.random.key(3), jnp.arange(6000), present))
  present = np.asarray(present)
  assert keep[0].all() and (keep[1] == ~present).all()
  assert keep[:, ~present].all()  # absent labels: always kept, a constant column
  sizes = keep[2:][:, present].sum(1)
  assert sizes.min() >= 1 and sizes.max() <= 5
  k = np.arange(1, 6)
  p = (1 / (k * (6 - k))) / (1 / (k * (6 - k))).sum()
  counts = np.bincount(sizes, minlength=6)[1:]
  # Multinomial counts: within 5 standard deviations.
  assert (np.abs(counts - len(sizes) * p) < 5 * np.sqrt(len(sizes) * p * (1 - p))).all()
  # Given its size, a coalition keeps each present segment equally often.
  per_segment = keep[2:][sizes == 2][:, present].mean(0)
  np.testing.assert_allclose(per_segment, 2 / 6, atol=5 * np.sqrt((1 / 3) * (2 / 3) / (
      sizes == 2).sum()))
  weights = np.asarray(coalition_weights(jnp.asarray(keep), jnp.asarray(present)))
  np.testing.assert_array_equal(weights[:2], 1e6)
  np.testing.assert_array_equal(weights[2:], 1.0)


def test_exact_on_an_additive_model():
  """A linear classifier's logit is additive over the segments: y(z) = y(0) + sum_j z_j c_j
  with c_j = sum over segment j's pixels of w_c (I - fill); the fit recovers phi_j = c_j."""
  size = 16
  clf = linear_classifier(size)
  images = _smooth_images(2, 1, size)
  labels = np.array([2, 0])
  maps = np.asarray(kernel_shap(clf, images, jnp.asarray(labels), key=jax.random.key(0),
                                num_samples=64, num_segments=8, segmentation="skimage",
                                hide="black", score="logit"), np.float64)
  w = np.asarray(clf.variables["w"], np.float64)
  for b in range(2):
    segments = skimage.segmentation.slic(images[b], n_segments=8, compactness=10.0, sigma=1.0,
                                         start_label=0)
    assert len(np.unique(segments)) > 2
    contribution = images[b].astype(np.float64) * w[:, labels[b]].reshape(size, size, 3)
    want = np.zeros((size, size))
    for j in np.unique(segments):
      want[segments == j] = contribution[segments == j].sum()
    # The scores round within the logit's 768 + 1 terms; phi is linear in them, with the
    # gain of the fit's pseudo-inverse (its largest row's sum of |entries|), and the solve
    # adds the rounding of S terms of that size.
    score_atol = float_tolerance.sum_atol(np.abs(contribution).sum() + 3, size * size * 3 + 1)
    gain = _fit_gain(jax.random.key(0), segments, size, 8, 64)
    atol = gain * (score_atol + float_tolerance.sum_atol(np.abs(contribution).sum() + 3, 64))
    np.testing.assert_allclose(maps[b], want, rtol=0, atol=atol)
    assert np.abs(want).max() > 20 * atol


def test_efficiency_and_batch_and_chunk_invariance():
  """The empty and full coalitions' weight 1e6 pins sum_j phi_j to y(1) - y(0) up to
  ~S / 1e6 of the scores' scale."""
  clf = tiny_classifiers.random_cnn(jax.random.key(3))
  images = _smooth_images(3, 2)
  labels = jnp.array([1, 3, 0])
  options = dict(key=jax.random.key(4), num_samples=48, num_segments=10, hide="black",
                 score="logit", segmentation="skimage")
  maps = np.asarray(kernel_shap(clf, images, labels, chunk=16, **options))
  logits = np.asarray(clf.apply(clf.variables, jnp.asarray(images)))
  black = np.asarray(clf.apply(clf.variables, jnp.zeros_like(jnp.asarray(images))))
  for b in range(3):
    segments = skimage.segmentation.slic(images[b], n_segments=10, compactness=10.0,
                                         sigma=1.0, start_label=0)
    phi = np.array([maps[b][segments == j][0] for j in np.unique(segments)])
    gap = logits[b, labels[b]] - black[b, labels[b]]
    assert abs(phi.sum() - gap) < 1e-3 * np.abs(logits).max()
  # Other programs round differently: the maps of the fits agree within 1e-4 of their scale.
  atol = 1e-4 * np.abs(maps).max()
  np.testing.assert_allclose(kernel_shap(clf, images, labels, chunk=5, **options), maps,
                             rtol=0, atol=atol)
  np.testing.assert_allclose(kernel_shap(clf, images[1:2], labels[1:2], chunk=16,
                                         **options)[0], maps[1], rtol=0, atol=atol)


def test_known_answer_on_region_classifier():
  """A bright square on the region over a dark background: the segments outside the
  classifier's region change no score (phi ~ 0), those meeting it carry class 0's evidence
  (the mass of the map)."""
  region = (8, 24, 8, 24)
  rng = np.random.default_rng(0)
  images = 0.25 + 0.02 * rng.normal(size=(2, SIZE, SIZE, 3))
  images[:, 8:24, 8:24] = 0.75 + 0.02 * rng.normal(size=(2, 16, 16, 3))
  images = images.clip(0, 1).astype(np.float32)
  clf = tiny_classifiers.region_classifier(SIZE, SIZE, region)
  maps = np.asarray(kernel_shap(clf, images, jnp.array([0, 0]), key=jax.random.key(1),
                                num_samples=64, num_segments=16, hide="black",
                                score="logit", segmentation="skimage"))
  inside = np.zeros((SIZE, SIZE), bool)
  inside[8:24, 8:24] = True
  for b in range(2):
    segments = skimage.segmentation.slic(images[b], n_segments=16, compactness=10.0,
                                         sigma=1.0, start_label=0)
    outside = ~np.isin(segments, np.unique(segments[inside]))
    assert outside.mean() > 0.3
    scale = np.abs(maps[b]).max()
    # A segment that changes no score gets phi ~ 0 only up to the fit's sampling noise (the
    # score is not exactly additive over the segments): a few % of the largest phi.
    assert np.abs(maps[b][outside]).max() < 0.03 * scale
    assert np.abs(maps[b][~outside]).sum() > 0.9 * np.abs(maps[b]).sum()
    assert maps[b][inside].min() > 0.0


def test_cost():
  info = methods.info("kernel_shap")
  assert info.cost(info.resolve({"num_samples": 300, "chunk": 64}), None) == ("forward", 300, 64)
