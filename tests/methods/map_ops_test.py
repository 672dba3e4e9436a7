"""Tests of salijax.methods.map_ops.upsample_bilinear: half-pixel bilinear upsampling."""

import float_tolerance
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from skimage import transform

from salijax.methods.map_ops import upsample_bilinear


def reference_upsample(maps: np.ndarray, height: int, width: int) -> np.ndarray:
  """The documented formula, one output pixel at a time (float64)."""
  *lead, h, w = maps.shape
  flat = maps.reshape(-1, h, w).astype(np.float64)
  out = np.zeros((flat.shape[0], height, width))

  def taps(index: int, size_in: int, size_out: int) -> tuple[int, int, float]:
    source = min(max((index + 0.5) * size_in / size_out - 0.5, 0.0), size_in - 1.0)
    low = int(np.floor(source))
    return low, min(low + 1, size_in - 1), source - low

  for y in range(height):
    y0, y1, fy = taps(y, h, height)
    for x in range(width):
      x0, x1, fx = taps(x, w, width)
      out[:, y, x] = ((1 - fy) * (1 - fx) * flat[:, y0, x0] + (1 - fy) * fx * flat[:, y0, x1]
                      + fy * (1 - fx) * flat[:, y1, x0] + fy * fx * flat[:, y1, x1])
  return out.reshape(*lead, height, width)


def upsample_atol(maps: np.ndarray) -> float:
  """Bound on the float32 error of upsample_bilinear(maps): per axis, the sampling positions
  (up to the input's size) round, and so do the two tap weights, their normalisation and the
  sum of the two taps."""
  return float_tolerance.sum_atol(np.abs(maps).max(), 8 * max(maps.shape[-2:]) + 16)


@pytest.mark.parametrize("size_in,size_out", [((5, 7), (17, 23)), ((2, 2), (64, 64)),
                                              ((7, 7), (56, 56)), ((3, 4), (3, 4))])
def test_matches_the_documented_formula(size_in, size_out):
  maps = np.random.default_rng(0).normal(size=(2, 3, *size_in)).astype(np.float32)
  got = upsample_bilinear(jnp.asarray(maps), *size_out)
  assert got.shape == (2, 3, *size_out) and got.dtype == jnp.float32
  np.testing.assert_allclose(got, reference_upsample(maps, *size_out), rtol=0,
                             atol=upsample_atol(maps))


def test_matches_skimage_resize_with_edge_mode():
  maps = np.random.default_rng(1).random((6, 9))
  expected = transform.resize(maps, (40, 50), order=1, mode="edge", anti_aliasing=False)
  # + 1: the float64 maps are rounded to float32 first.
  atol = upsample_atol(maps) + float_tolerance.sum_atol(np.abs(maps).max(), 1)
  np.testing.assert_allclose(upsample_bilinear(maps, 40, 50), expected, rtol=0, atol=atol)


def test_constant_stays_constant_and_range_is_kept():
  # Per axis, two tap weights normalised to sum 1, and their sum: a few roundings.
  np.testing.assert_allclose(upsample_bilinear(jnp.full((3, 3), 0.25), 20, 11), 0.25,
                             rtol=float_tolerance.sum_rtol(6), atol=0)
  grid = (np.random.default_rng(2).random((7, 7)) < 0.5)
  up = upsample_bilinear(grid, 64, 64)  # bool in, f32 out
  assert up.dtype == jnp.float32
  assert float(up.min()) >= 0.0 and float(up.max()) <= 1.0


def test_jit_and_vmap_agree_with_eager():
  maps = jax.random.uniform(jax.random.key(0), (4, 3, 5))
  eager = upsample_bilinear(maps, 12, 20)
  jitted = jax.jit(upsample_bilinear, static_argnums=(1, 2))(maps, 12, 20)
  mapped = jax.vmap(lambda m: upsample_bilinear(m, 12, 20))(maps)
  atol = 2 * upsample_atol(np.asarray(maps))  # other programs, each within the bound
  np.testing.assert_allclose(jitted, eager, rtol=0, atol=atol)
  np.testing.assert_allclose(mapped, eager, rtol=0, atol=atol)
