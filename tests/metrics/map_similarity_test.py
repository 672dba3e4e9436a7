"""Tests of salijax.metrics.map_similarity against scipy and scikit-image."""

import float_tolerance
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.ndimage as ndi
import scipy.stats
import skimage.feature
import skimage.metrics

from salijax.metrics import map_similarity


def min_max(x: np.ndarray) -> np.ndarray:
  return (x - x.min()) / (x.max() - x.min())


def spearman_atol(pixels: int) -> float:
  """Bound on the float32 error of a Spearman (or Pearson) correlation of `pixels` values:
  sum x y errs by <= n eps |x| |y| (Cauchy-Schwarz), and sum x^2 and sum y^2 under their
  square roots by <= n eps / 2 each, relative to the same |x| |y|; a correlation is <= 1."""
  return float_tolerance.sum_atol(1.0, 2 * pixels + 4)


def ssim_atol(a: np.ndarray, b: np.ndarray) -> float:
  """A bound on the float32 errors of map_similarity.ssim(a, b), the batch's largest. Per
  pixel, the local means and (co)variances sum the 11 x 11 window's taps (two passes) of
  min-max normalised maps: n = 2 * 11 + 4 roundings. That errs SSIM's two mean factors by
  <= 3 n eps, and its variance factors, E[x^2] - E[x]^2 cancelling, by <= 4 n eps
  E[x^2 + y^2] / (var x + var y + C2); SSIM is the mean of the pixels'."""
  radius, sigma = map_similarity.SSIM_RADIUS, map_similarity.SSIM_SIGMA
  n = 2 * (2 * radius + 1) + 4

  def window(x):  # the valid window means
    return ndi.gaussian_filter(x, sigma, truncate=radius / sigma)[radius:-radius, radius:-radius]

  out = []
  for x, y in zip(np.asarray(a, np.float64), np.asarray(b, np.float64), strict=True):
    x, y = min_max(x), min_max(y)
    squares = window(x * x) + window(y * y)
    variances = squares - window(x) ** 2 - window(y) ** 2 + map_similarity.SSIM_K2 ** 2
    out.append(n * float_tolerance.EPS * (3 + 4 * squares / variances).mean())
  return max(out)


# A HOG feature: a cell sums 64 votes (hypot and binning round), and each block's two L2
# normalisations sum 36 squares; features are <= 1.
HOG_ATOL = float_tolerance.sum_atol(1.0, 64 + 2 * 36 + 16)


def hog_similarity_atol(dimension: int) -> float:
  """A Pearson correlation of `dimension` HOG features, each within HOG_ATOL (~ that
  relative to their spread)."""
  return spearman_atol(dimension) + 4 * HOG_ATOL


def correlated_maps(seed: int, shape: tuple[int, int, int], levels: float | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
  """Two f32 batches correlated about 0.5 per image; `levels` > 0 rounds (many ties)."""
  rng = np.random.default_rng(seed)
  a = rng.normal(size=shape)
  b = 0.6 * a + rng.normal(size=shape)
  if levels is not None:
    a, b = np.round(a * levels) / levels, np.round(b * levels) / levels
  return a.astype(np.float32), b.astype(np.float32)


@pytest.mark.parametrize("levels", [None, 2.0])
def test_spearman_matches_scipy_with_and_without_ties(levels):
  a, b = correlated_maps(0, (3, 20, 24), levels)
  a[0, :3] = -0.0  # -0.0 and 0.0 are one tie
  got = map_similarity.spearman(a, b)
  got_abs = map_similarity.spearman_abs(a, b)
  for i in range(3):
    want = scipy.stats.spearmanr(a[i].ravel(), b[i].ravel()).statistic
    want_abs = scipy.stats.spearmanr(np.abs(a[i]).ravel(), np.abs(b[i]).ravel()).statistic
    np.testing.assert_allclose(got[i], want, rtol=0, atol=spearman_atol(20 * 24))
    np.testing.assert_allclose(got_abs[i], want_abs, rtol=0, atol=spearman_atol(20 * 24))
  assert got.shape == (3,) and got.dtype == jnp.float32
  assert not np.allclose(got, got_abs, atol=1e-3)  # the absolute value matters here


def test_spearman_of_monotone_transforms_is_one_and_constant_maps_give_zero():
  a, _ = correlated_maps(1, (2, 16, 16))
  # The same ranks (exact): sum x y / (sqrt(sum x^2) sqrt(sum y^2)) with x y = +-x^2 rounds
  # only in the square roots and the division.
  np.testing.assert_allclose(map_similarity.spearman(a, np.exp(a) * 3 - 1), 1.0, rtol=0,
                             atol=4 * float_tolerance.EPS)
  np.testing.assert_allclose(map_similarity.spearman(a, -a), -1.0, rtol=0,
                             atol=4 * float_tolerance.EPS)
  constant = np.full_like(a, 0.25)
  np.testing.assert_array_equal(map_similarity.spearman(a, constant), 0.0)
  np.testing.assert_array_equal(map_similarity.hog_similarity(a, constant), 0.0)


def test_ssim_matches_skimage_on_min_max_normalised_maps():
  a, b = correlated_maps(2, (3, 23, 30))
  b[2] = b[2] * 5 + 7  # min-max normalisation removes the scale
  got = map_similarity.ssim(a, b)
  for i in range(3):
    want = skimage.metrics.structural_similarity(
        min_max(a[i].astype(np.float64)), min_max(b[i].astype(np.float64)),
        gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1)
    np.testing.assert_allclose(got[i], want, rtol=0, atol=ssim_atol(a[i:i + 1], b[i:i + 1]))
  # SSIM is flat at its maximum 1: the affine map's roundings matter only to second order.
  np.testing.assert_allclose(map_similarity.ssim(a, a * 2 + 1), 1.0, rtol=0,
                             atol=ssim_atol(a, a))


def test_hog_features_match_skimage():
  a, _ = correlated_maps(3, (2, 40, 35))
  got = map_similarity.hog_features(a)
  for i in range(2):
    want = skimage.feature.hog(min_max(a[i].astype(np.float64)), orientations=9,
                               pixels_per_cell=(8, 8), cells_per_block=(2, 2),
                               block_norm="L2-Hys", feature_vector=True)
    assert got[i].shape == want.shape == ((5 - 1) * (4 - 1) * 36,)
    np.testing.assert_allclose(got[i], want, rtol=0, atol=HOG_ATOL)


def test_hog_similarity_is_the_pearson_correlation_of_skimage_features():
  a, b = correlated_maps(4, (2, 32, 32))
  got = map_similarity.hog_similarity(a, b)

  def features(x):
    return skimage.feature.hog(min_max(x.astype(np.float64)), orientations=9,
                               pixels_per_cell=(8, 8), cells_per_block=(2, 2),
                               block_norm="L2-Hys")

  for i in range(2):
    want = np.corrcoef(features(a[i]), features(b[i]))[0, 1]
    np.testing.assert_allclose(got[i], want, rtol=0,
                               atol=hog_similarity_atol(features(a[i]).size))


@pytest.mark.parametrize("name", list(map_similarity.SIMILARITIES))
def test_jit_and_batch_invariance(name):
  measure = map_similarity.similarity(name)
  a, b = correlated_maps(5, (3, 24, 24))
  full = measure(a, b)
  # Other programs, each within the measure's bound; measure(a, a) has exact ranks or
  # features (only the correlation's square roots and division round) or is SSIM's maximum.
  atol, same = {"ssim": (ssim_atol(a, b), ssim_atol(a, a)),
                "hog": (hog_similarity_atol(2 * 2 * 36), 4 * float_tolerance.EPS)}.get(
                    name, (spearman_atol(24 * 24), 4 * float_tolerance.EPS))
  np.testing.assert_allclose(jax.jit(measure)(a, b), full, rtol=0, atol=2 * atol)
  np.testing.assert_allclose(measure(a[1:2], b[1:2]), full[1:2], rtol=0, atol=2 * atol)
  np.testing.assert_allclose(measure(a, a), 1.0, rtol=0, atol=same)
  assert (full < 0.99).all()


def test_bad_inputs():
  a, b = correlated_maps(6, (2, 16, 16))
  with pytest.raises(ValueError, match="same shape"):
    map_similarity.spearman(a, b[:1])
  with pytest.raises(ValueError, match=r"a must have shape \[B, H, W\]"):
    map_similarity.spearman(a[0], b[0])
  with pytest.raises(TypeError, match="b must be floating point"):
    map_similarity.ssim(a, b.astype(np.int32))
  with pytest.raises(TypeError, match="a must be an array"):
    map_similarity.spearman_abs([[1.0]], b)
  with pytest.raises(ValueError, match="at least 11 x 11"):
    map_similarity.ssim(a[:, :10], b[:, :10])
  with pytest.raises(ValueError, match="at least 16 x 16"):
    map_similarity.hog_features(a[:, :15])
  with pytest.raises(ValueError, match="b must be finite"):
    map_similarity.hog_similarity(a, np.where(a > 1, np.nan, b))
  with pytest.raises(ValueError, match="similarity: expected one of"):
    map_similarity.similarity("pearson")
