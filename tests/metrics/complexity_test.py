"""Tests of salijax.metrics.complexity."""

import math
import warnings

import float_tolerance
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from salijax.metrics.complexity import (
    Complexity,
    EffectiveComplexity,
    complexity,
    effective_complexity,
)


def reference(maps):
  """Pixel loops in float64: Gini as the mean absolute difference over all pairs of pixels.

  Gini = sum_ij |x_i - x_j| / (2 n sum_i x_i), the textbook definition, independent of the
  sorted formula the metric uses. An all-zero map counts as a uniform one.
  """
  rows = []
  for saliency in np.asarray(maps, np.float64):
    x = [abs(v) for v in saliency.ravel()]
    n, total = len(x), sum(x)
    if total == 0:
      x, total = [1.0] * n, float(n)
    gini = sum(abs(a - b) for a in x for b in x) / (2 * n * total)
    entropy = -sum(v / total * math.log(v / total) for v in x if v > 0)
    held, needed = 0.0, 0
    for v in sorted(x, reverse=True):
      held += v
      needed += 1
      if held >= 0.9 * total:
        break
    rows.append((gini, entropy, needed / n))
  return [np.array(column) for column in zip(*rows, strict=True)]


def complexity_atol(pixels: int) -> float:
  """Bound on the float32 error of Gini and entropy over `pixels` pixels: Gini's sorted sum
  weighs each |x| by <= n, relative to n sum |x|; the entropy sums n terms -p log p >= 0
  (<= log n, each with a few roundings of its own). The 90 % mass count is exact."""
  return float_tolerance.sum_atol(math.log(pixels) + 1, 2 * pixels + 4)


def test_matches_the_pixel_loop_reference():
  rng = np.random.default_rng(0)
  maps = rng.normal(size=(5, 7, 11)).astype(np.float32)
  maps[1] = np.abs(maps[1]) ** 6  # concentrated
  maps[2] = 0.0
  maps[3] *= rng.uniform(size=(7, 11)) < 0.2  # mostly zeros
  got = complexity(jnp.asarray(maps))
  assert isinstance(got, Complexity)
  for name, value, want in zip(Complexity._fields, got, reference(maps), strict=True):
    assert value.shape == (5,) and value.dtype == jnp.float32, name
    np.testing.assert_allclose(value, want, rtol=0, atol=complexity_atol(7 * 11), err_msg=name)


def test_known_answers():
  n = 10 * 20
  half = np.zeros((10, 20), np.float32)
  half[:, :10] = 2.0
  one = np.zeros((10, 20), np.float32)
  one[3, 17] = -5.0
  uniform = np.full((10, 20), 0.3, np.float32)
  got = complexity(jnp.asarray(np.stack([half, one, uniform, np.zeros_like(uniform)])))
  # Half the pixels equal, half zero: half of all pairs differ by the value -> Gini 1/2.
  np.testing.assert_allclose(got.sparseness, [0.5, 1 - 1 / n, 0.0, 0.0], rtol=0,
                             atol=complexity_atol(n))
  np.testing.assert_allclose(got.entropy, [math.log(n / 2), 0.0, math.log(n), math.log(n)],
                             rtol=0, atol=complexity_atol(n))
  # 90 % of the mass of 100 equal pixels is 90 pixels: 90 / 200 = 0.45 (one rounding).
  np.testing.assert_allclose(got.mass_fraction_90, [0.45, 1 / n, 0.9, 0.9],
                             rtol=float_tolerance.EPS, atol=0)


def test_uses_magnitudes_and_ignores_scale():
  maps = jnp.asarray(np.random.default_rng(1).normal(size=(3, 6, 9)), jnp.float32)
  base = complexity(maps)
  # Exact: |-x| = |x|, and scaling by 4 = 2^2 commutes with every rounding.
  for other in (complexity(-maps), complexity(4.0 * maps)):
    for a, b in zip(base, other, strict=True):
      np.testing.assert_array_equal(a, b)


def test_sparser_maps_score_as_sparser():
  rng = np.random.default_rng(2)
  dense = rng.uniform(0.5, 1.0, (6, 8))
  sparse = dense * (rng.uniform(size=(6, 8)) < 0.1)
  got = complexity(jnp.asarray(np.stack([dense, sparse]), jnp.float32))
  assert got.sparseness[1] > got.sparseness[0]
  assert got.entropy[1] < got.entropy[0]
  assert got.mass_fraction_90[1] < got.mass_fraction_90[0]


def test_jit_vmap_and_batch_invariance():
  maps = jnp.asarray(np.random.default_rng(3).normal(size=(4, 6, 10)), jnp.float32)
  eager = complexity(maps)
  jitted = jax.jit(complexity)(maps)
  mapped = jax.vmap(lambda m: complexity(m[None]))(maps)
  alone = complexity(maps[1:2])
  atol = 2 * complexity_atol(6 * 10)  # other programs, each within the bound
  for a, b, c, d in zip(eager, jitted, mapped, alone, strict=True):
    np.testing.assert_allclose(a, b, rtol=0, atol=atol)
    np.testing.assert_allclose(a, c[:, 0], rtol=0, atol=atol)
    np.testing.assert_allclose(a[1:2], d, rtol=0, atol=atol)


@pytest.mark.parametrize("maps, error, pattern", [
    (np.zeros((6, 10), np.float32), ValueError, r"\[B, H, W\]"),
    (np.zeros((0, 6, 10), np.float32), ValueError, "empty"),
    (np.zeros((2, 6, 10), np.int32), TypeError, "floating"),
    (np.full((2, 6, 10), np.inf, np.float32), ValueError, "finite"),
    ([[[0.0]]], TypeError, "maps"),
])
def test_bad_inputs_are_rejected(maps, error, pattern):
  with pytest.raises(error, match=pattern):
    complexity(maps)


def gini_with_offset(maps, offset):
  """Gini of |L| + offset max |L| per map, by the pairwise definition in float64."""
  out = []
  for saliency in np.asarray(maps, np.float64):
    x = np.abs(saliency.ravel())
    x = x + offset * x.max()
    out.append(np.abs(x[:, None] - x[None, :]).sum() / (2 * x.size * x.sum()))
  return np.array(out)


def test_sparseness_offset_matches_the_pairwise_reference():
  rng = np.random.default_rng(4)
  maps = rng.normal(size=(4, 6, 9)).astype(np.float32)
  maps[1] *= rng.uniform(size=(6, 9)) < 0.1  # sparse: the offset matters most
  for offset in (0.0, 1e-7, 0.01):
    got = complexity(jnp.asarray(maps), sparseness_offset=offset)
    np.testing.assert_allclose(got.sparseness, gini_with_offset(maps, offset), rtol=0,
                               atol=complexity_atol(6 * 9))
  base = complexity(jnp.asarray(maps))
  offset = complexity(jnp.asarray(maps), sparseness_offset=0.01)
  np.testing.assert_array_equal(base.entropy, offset.entropy)  # only the Gini index changes
  assert (offset.sparseness < base.sparseness).all()


def effective_reference(maps, eps, normalise):
  counts = []
  for saliency in np.asarray(maps, np.float64):
    x = [abs(v) for v in saliency.ravel()]
    top = max(x)
    counts.append(sum(1 for v in x if (v / top if normalise and top > 0 else v) > eps))
  return np.array(counts)


def test_effective_complexity_matches_the_reference_and_known_answers():
  rng = np.random.default_rng(5)
  # Values on a grid of 1/64: none lies within float32 rounding of a threshold.
  maps = (rng.integers(-64, 65, (4, 7, 9)) / 64.0).astype(np.float32)
  maps[2] = 0.0
  for eps, normalise in ((1e-5, False), (0.5, False), (0.26, True), (0.0, True)):
    got = effective_complexity(jnp.asarray(maps), eps=eps, normalise=normalise)
    assert isinstance(got, EffectiveComplexity)
    assert got.count.dtype == jnp.int32 and got.fraction.dtype == jnp.float32
    want = effective_reference(maps, eps, normalise)
    np.testing.assert_array_equal(got.count, want)
    np.testing.assert_allclose(got.fraction, want / 63, rtol=float_tolerance.EPS, atol=0)
  one = np.zeros((1, 5, 5), np.float32)
  one[0, 2, 3] = -3.0
  one[0, 0, 0] = 1e-6  # below the default eps
  assert int(effective_complexity(jnp.asarray(one)).count[0]) == 1
  # Relative to the maximum: 1e-6 / 3 < 1e-5 still; 1.0 of 3.0 is above 0.3, not above 0.4.
  one[0, 1, 1] = 1.0
  assert int(effective_complexity(jnp.asarray(one), eps=0.3, normalise=True).count[0]) == 2
  assert int(effective_complexity(jnp.asarray(one), eps=0.4, normalise=True).count[0]) == 1
  # Scale: absolute thresholds see it, normalised ones do not.
  scaled = effective_complexity(jnp.asarray(maps) * 1e-6, eps=1e-5)
  assert int(scaled.count.max()) == 0
  np.testing.assert_array_equal(
      effective_complexity(jnp.asarray(maps) * 1e-6, eps=0.26, normalise=True).count,
      effective_complexity(jnp.asarray(maps), eps=0.26, normalise=True).count)


def test_effective_complexity_under_jit():
  maps = jnp.asarray(np.random.default_rng(6).normal(size=(3, 5, 8)), jnp.float32)
  eager = effective_complexity(maps, eps=0.5)
  jitted = jax.jit(lambda m: effective_complexity(m, eps=0.5))(maps)
  np.testing.assert_array_equal(eager.count, jitted.count)
  jitted_offset = jax.jit(lambda m: complexity(m, sparseness_offset=1e-3))(maps)
  np.testing.assert_allclose(jitted_offset.sparseness, gini_with_offset(maps, 1e-3), rtol=0,
                             atol=complexity_atol(40))


@pytest.mark.parametrize("call, error, pattern", [
    (lambda m: complexity(m, sparseness_offset=-1.0), ValueError, "sparseness_offset"),
    (lambda m: complexity(m, sparseness_offset=math.nan), ValueError, "sparseness_offset"),
    (lambda m: effective_complexity(m, eps=-1e-5), ValueError, "eps"),
    (lambda m: effective_complexity(m, eps="small"), ValueError, "eps"),
    (lambda m: effective_complexity(m, normalise=1), TypeError, "normalise"),
    (lambda m: effective_complexity(m[0]), ValueError, r"\[B, H, W\]"),
    (lambda m: effective_complexity(m.at[0, 0, 0].set(jnp.nan)), ValueError, "finite"),
])
def test_bad_options_are_rejected(call, error, pattern):
  with pytest.raises(error, match=pattern):
    call(jnp.ones((2, 4, 4), jnp.float32))


def run_quantus(metric, maps):
  """A Quantus complexity metric on a_batch (B,1,H,W); x_batch only gives the shape."""
  x_batch = np.zeros((len(maps), 3) + maps.shape[1:], np.float32)
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    return np.asarray(metric(model=None, x_batch=x_batch, y_batch=np.zeros(len(maps), int),
                             a_batch=maps[:, None].copy(), batch_size=len(maps)), np.float64)


def test_equal_to_quantus(quantus):
  """Sparseness = sparseness with offset 1e-7, Complexity = entropy, EffectiveComplexity =
  count, on maps whose max |L| is 1 (so Quantus's batch-wide max normalisation is each map's).

  Tolerances: the float32 bound of the Gini index and entropy (`complexity_atol`) on either
  side; Quantus's 1e-12 in the logarithm moves the entropy by at most n 1e-12. Counts exact
  (values on a grid of 1/64, none near a threshold)."""
  rng = np.random.default_rng(7)
  maps = (rng.integers(-64, 65, (4, 12, 10)) / 64.0).astype(np.float32)
  maps[1] *= rng.uniform(size=(12, 10)) < 0.1
  maps[:, 0, 0] = 1.0
  n = 12 * 10
  atol = 2 * complexity_atol(n)
  plain = {"disable_warnings": True, "abs": True}
  ours = complexity(jnp.asarray(maps), sparseness_offset=1e-7)
  paper = complexity(jnp.asarray(maps)).sparseness
  # The paper's Gini (no offset) moves by G n c max / (sum + n c max) <= n c max / sum.
  magnitudes = np.abs(maps).reshape(len(maps), -1)
  offset_bound = n * 1e-7 * magnitudes.max(1) / magnitudes.sum(1)
  for normalise in (False, True):
    sparseness = run_quantus(quantus.Sparseness(normalise=normalise, **plain), maps)
    np.testing.assert_allclose(ours.sparseness, sparseness, rtol=0, atol=atol)
    assert (np.abs(np.asarray(paper) - sparseness) <= atol + offset_bound).all()
    entropy = run_quantus(quantus.Complexity(normalise=normalise, **plain), maps)
    np.testing.assert_allclose(ours.entropy, entropy, rtol=0, atol=atol + n * 1e-12)
    for eps in (1e-5, 0.3):
      count = run_quantus(quantus.EffectiveComplexity(eps=eps, normalise=normalise, **plain),
                          maps)
      np.testing.assert_array_equal(
          effective_complexity(jnp.asarray(maps), eps=eps, normalise=normalise).count, count)
