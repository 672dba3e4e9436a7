"""Tests of salijax.metrics.complexity."""

import math

import float_tolerance
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from salijax.metrics.complexity import Complexity, complexity


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
