"""Tests of salijax.order_statistics against numpy's sort, ties and extremes included."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from salijax.metrics import attribution_groups
from salijax.order_statistics import kth_smallest, smallest


def _values(dtype) -> np.ndarray:
  """Exponential draws with zeros, a run of ties, a subnormal, huge values and infinities."""
  rng = np.random.default_rng(4)
  values = np.concatenate([rng.exponential(size=500), np.zeros(7), np.full(9, 0.25),
                           [1e-42, 3e38, np.inf, np.inf]]).astype(dtype)
  rng.shuffle(values)
  return values


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kth_smallest_is_the_sorted_value(dtype):
  values = _values(dtype)
  ordered = np.sort(values)
  with jax.enable_x64(dtype == np.float64):
    for k in (0, 6, 7, 100, 257, len(values) - 3, len(values) - 1):
      assert float(kth_smallest(jnp.asarray(values), k)) == ordered[k], k


def test_smallest_is_the_start_of_a_stable_sort():
  """Counts that end inside the run of 0.25s and the run of zeros take its first indices."""
  values = _values(np.float32)
  order = np.argsort(values, kind="stable")
  at_ties = int(np.searchsorted(np.sort(values), 0.25)) + 4  # inside the 9 ties
  chosen_fn = jax.jit(smallest)
  for count in (1, 3, 7, 8, 100, at_ties, len(values) - 2, len(values)):
    want = np.zeros(len(values), bool)
    want[order[:count]] = True
    got = np.asarray(chosen_fn(jnp.asarray(values), count))
    np.testing.assert_array_equal(got, want, err_msg=str(count))


def test_random_subsets_are_the_smallest_draws():
  shape, key = (3, 9, 11), jax.random.key(2)
  for job, size in ((0, 1), (4, 50), (7, 99)):
    draws = np.asarray(attribution_groups.random_draws(key, job, shape))
    order = np.argsort(draws, axis=1, kind="stable")[:, :size]
    want = np.zeros(draws.shape, bool)
    np.put_along_axis(want, order, True, axis=1)
    got = attribution_groups.random_subsets(key, jnp.int32(job), shape, size)
    np.testing.assert_array_equal(got, want.reshape(shape))
    assert (np.asarray(got).sum(axis=(1, 2)) == size).all()
