"""Tests of salijax.models.parameter_free_layers against torch and a direct loop."""

import math

import float_tolerance
import numpy as np
import pytest

from salijax.models import parameter_free_layers

SIZES = [(1, 1), (3, 5), (7, 7), (9, 10), (13, 16), (20, 3), (14, 28)]


def _loop_reference(x: np.ndarray, out: tuple[int, int]) -> np.ndarray:
  """torch's rule written out: cell (i, j) averages rows [floor(i*H/oh), ceil((i+1)*H/oh))."""
  b, h, w, c = x.shape
  result = np.zeros((b, *out, c), np.float64)
  for i in range(out[0]):
    for j in range(out[1]):
      rows = slice(math.floor(i * h / out[0]), math.ceil((i + 1) * h / out[0]))
      cols = slice(math.floor(j * w / out[1]), math.ceil((j + 1) * w / out[1]))
      result[:, i, j] = x[:, rows, cols].mean(axis=(1, 2))
  return result


def _atol(x: np.ndarray, out: tuple[int, int]) -> float:
  """A cell's r x c inputs summed in float32 on both sides, in any order: (r c - 1) u
  max|x| each, and one rounding of the division."""
  r, c = (max(end - start for start, end in parameter_free_layers.adaptive_bins(length, cells))
          for length, cells in zip(x.shape[1:3], out, strict=True))
  return float_tolerance.sum_atol(np.abs(x).max(), 2 * r * c + 2)


@pytest.mark.parametrize("size", SIZES)
def test_matches_direct_loop(size):
  x = np.random.default_rng(0).standard_normal((2, *size, 4)).astype(np.float32)
  np.testing.assert_allclose(parameter_free_layers.adaptive_avg_pool(x, (7, 7)),
                             _loop_reference(x, (7, 7)), rtol=0, atol=_atol(x, (7, 7)))


@pytest.mark.parametrize("size", SIZES)
def test_matches_torch(torch, size):
  x = np.random.default_rng(1).standard_normal((2, *size, 4)).astype(np.float32)
  expected = torch.nn.functional.adaptive_avg_pool2d(
      torch.from_numpy(x.transpose(0, 3, 1, 2)), (7, 7)).numpy().transpose(0, 2, 3, 1)
  np.testing.assert_allclose(parameter_free_layers.adaptive_avg_pool(x, (7, 7)), expected, rtol=0,
                             atol=_atol(x, (7, 7)))


def test_bins_cover_the_axis_in_order():
  for length in range(1, 30):
    bins = parameter_free_layers.adaptive_bins(length, 7)
    assert bins[0][0] == 0 and bins[-1][1] == length
    assert all(start < end for start, end in bins)
    assert all(a[0] <= b[0] and a[1] <= b[1] for a, b in zip(bins, bins[1:], strict=False))
