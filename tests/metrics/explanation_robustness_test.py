"""Tests of salijax.metrics.explanation_robustness."""

import itertools

import jax
import jax.numpy as jnp
import map_similarity_test
import numpy as np
import pytest
from scipy import stats
from skimage.metrics import structural_similarity

from salijax.metrics.explanation_robustness import (
  ExplanationRobustness,
  explanation_robustness,
  largest_valid_rectangle,
)
from salijax.perturbations.augmentation import augment_images, augment_maps, valid_pixels

SIZE = 32


def brute_force_rectangle(valid):
  """Every rectangle, in the order (top, bottom, left, right): the first of the largest."""
  height, width = valid.shape
  best, area = (0, 0, 0, 0), 0
  for top, bottom in itertools.combinations(range(height + 1), 2):
    for left, right in itertools.combinations(range(width + 1), 2):
      size = (bottom - top) * (right - left)
      if size > area and valid[top:bottom, left:right].all():
        best, area = (top, bottom, left, right), size
  return best, area


def unit(x):
  low, high = x.min(), x.max()
  return (x - low) / (high - low) if high > low else np.zeros_like(x)


def reference(a, b, valid):
  """scipy's Spearman over the valid pixels; skimage's SSIM over the brute-force rectangle."""
  (top, bottom, left, right), _ = brute_force_rectangle(valid)
  spearman, ssim = [], []
  for x, y in zip(np.asarray(a, np.float64), np.asarray(b, np.float64), strict=True):
    spearman.append(stats.spearmanr(x[valid], y[valid]).statistic)
    ssim.append(structural_similarity(
        unit(x[top:bottom, left:right]), unit(y[top:bottom, left:right]),
        gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0))
  return np.array(spearman), np.array(ssim)


def bounds(a, b, valid):
  """Bounds on the float32 errors of the Spearman over the valid pixels and of the SSIM over
  their largest rectangle (map_similarity_test's)."""
  top, bottom, left, right = largest_valid_rectangle(valid)
  return (map_similarity_test.spearman_atol(int(valid.sum())),
          map_similarity_test.ssim_atol(np.asarray(a)[:, top:bottom, left:right],
                                        np.asarray(b)[:, top:bottom, left:right]))


def test_largest_rectangle_matches_the_brute_force():
  rng = np.random.default_rng(0)
  for trial in range(12):
    valid = rng.uniform(size=(7, 9)) < (0.6 + 0.03 * trial)
    top, bottom, left, right = largest_valid_rectangle(valid)
    want, area = brute_force_rectangle(valid)
    assert (bottom - top) * (right - left) == area
    assert (top, bottom, left, right) == want
  assert largest_valid_rectangle(np.zeros((3, 4), bool)) == (0, 0, 0, 0)
  assert largest_valid_rectangle(valid_pixels("resize0.75", SIZE, SIZE)) == (4, 28, 4, 28)


@pytest.mark.parametrize("name", ["rotate45", "resize0.75", "crop0.8"])
def test_matches_scipy_and_skimage_on_the_valid_pixels(name):
  rng = np.random.default_rng(1)
  a = rng.normal(size=(3, SIZE, SIZE)).astype(np.float32)
  b = (a + rng.normal(scale=0.7, size=a.shape)).astype(np.float32)
  b[2] = np.round(b[2])  # ties
  valid = valid_pixels(name, SIZE, SIZE)
  got = explanation_robustness(a, b, valid)
  assert isinstance(got, ExplanationRobustness)
  want_spearman, want_ssim = reference(a, b, valid)
  spearman_atol, ssim_atol = bounds(a, b, valid)
  np.testing.assert_allclose(got.spearman, want_spearman, rtol=0, atol=spearman_atol)
  np.testing.assert_allclose(got.ssim, want_ssim, rtol=0, atol=ssim_atol)


def test_invalid_pixels_are_ignored():
  rng = np.random.default_rng(2)
  a = rng.normal(size=(2, SIZE, SIZE)).astype(np.float32)
  b = rng.normal(size=(2, SIZE, SIZE)).astype(np.float32)
  valid = valid_pixels("rotate45", SIZE, SIZE)
  changed = np.where(valid, b, 1e3 * rng.normal(size=b.shape)).astype(np.float32)
  first, second = explanation_robustness(a, b, valid), explanation_robustness(a, changed, valid)
  np.testing.assert_array_equal(first.spearman, second.spearman)
  np.testing.assert_array_equal(first.ssim, second.ssim)


def brightness(images):
  """A perfectly equivariant 'method': the map is each pixel's mean colour."""
  return jnp.asarray(images).mean(axis=-1)


@pytest.mark.parametrize("name", ["rotate45", "rotate135", "rotate225", "rotate315", "rotate90",
                                  "resize0.75", "crop0.8"])
def test_an_equivariant_method_is_perfectly_robust(name):
  """The map of the augmented image is the augmented map (bilinear interpolation is linear)."""
  images = np.random.default_rng(3).uniform(size=(2, SIZE, SIZE, 3)).astype(np.float32)
  a = brightness(augment_images(images, name))
  b = augment_maps(brightness(images), name)
  result = explanation_robustness(a, b, valid_pixels(name, SIZE, SIZE))
  # Equal maps up to rounding: Spearman's rounding, plus at most every pixel swapping ranks
  # with a neighbour (12 / n^2); SSIM is flat at its maximum, so the maps' rounding only
  # matters to second order.
  spearman_atol, ssim_atol = bounds(a, b, valid_pixels(name, SIZE, SIZE))
  n = int(valid_pixels(name, SIZE, SIZE).sum())
  np.testing.assert_allclose(result.spearman, 1.0, rtol=0, atol=spearman_atol + 12 / n ** 2)
  np.testing.assert_allclose(result.ssim, 1.0, rtol=0, atol=ssim_atol)


def test_a_method_that_ignores_the_rotation_is_not_robust():
  """A fixed left-to-right ramp, whatever the image: rotated by 90 degrees it becomes a
  vertical ramp, uncorrelated with the horizontal one."""
  ramp = np.broadcast_to(np.arange(SIZE, dtype=np.float32), (2, SIZE, SIZE))
  result = explanation_robustness(ramp, augment_maps(ramp, "rotate90"),
                                  valid_pixels("rotate90", SIZE, SIZE))
  # Exact: the ranks, their means and products are small multiples of 1/4, every sum exact.
  np.testing.assert_array_equal(result.spearman, 0.0)
  assert np.all(np.asarray(result.ssim) < 0.5)


def test_batch_and_jit_invariance():
  rng = np.random.default_rng(4)
  a = rng.normal(size=(4, SIZE, SIZE)).astype(np.float32)
  b = (a + rng.normal(size=a.shape)).astype(np.float32)
  valid = valid_pixels("rotate45", SIZE, SIZE)
  whole = explanation_robustness(a, b, valid)
  spearman_atol, ssim_atol = bounds(a, b, valid)  # other programs: each within these
  for i in range(4):
    alone = explanation_robustness(a[i:i + 1], b[i:i + 1], valid)
    np.testing.assert_allclose(alone.spearman[0], whole.spearman[i], rtol=0,
                               atol=2 * spearman_atol)
    np.testing.assert_allclose(alone.ssim[0], whole.ssim[i], rtol=0, atol=2 * ssim_atol)
  jitted = jax.jit(lambda x, y: explanation_robustness(x, y, valid))(a, b)
  np.testing.assert_allclose(jitted.spearman, whole.spearman, rtol=0, atol=2 * spearman_atol)
  np.testing.assert_allclose(jitted.ssim, whole.ssim, rtol=0, atol=2 * ssim_atol)


def test_bad_inputs_are_named():
  maps = np.zeros((2, SIZE, SIZE), np.float32)
  valid = np.ones((SIZE, SIZE), bool)
  with pytest.raises(ValueError, match="perturbed_map"):
    explanation_robustness(maps, maps[:1], valid)
  with pytest.raises(ValueError, match="map_of_perturbed"):
    explanation_robustness(maps[0], maps[0], valid)
  with pytest.raises(TypeError, match="valid"):
    explanation_robustness(maps, maps, valid.astype(np.float32))
  with pytest.raises(ValueError, match="valid"):
    explanation_robustness(maps, maps, valid[:-1])
  with pytest.raises(ValueError, match="valid.*11 x 11"):
    explanation_robustness(maps, maps, valid_pixels("resize0.3", SIZE, SIZE))
  with pytest.raises(TypeError, match="valid"):
    jax.jit(lambda v: explanation_robustness(maps, maps, v))(valid)
