"""Tests of salijax.metrics.saliency_order: the tie rule and the checks of maps."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from salijax.metrics.saliency_order import pixel_ranks
from salijax.validation import check_maps


def test_ranks_by_decreasing_value_with_ties_in_raster_order():
  maps = jnp.array([[[1.0, 2.0], [2.0, 1.0]]])
  # Order: (0,1)=2 then (1,0)=2 (later in raster order), then (0,0)=1, then (1,1)=1.
  np.testing.assert_array_equal(pixel_ranks(maps), [[[2, 0], [1, 3]]])
  np.testing.assert_array_equal(pixel_ranks(jnp.zeros((1, 2, 3))), [[[0, 1, 2], [3, 4, 5]]])
  np.testing.assert_array_equal(pixel_ranks(jnp.array([[[0.0, -0.0, 0.0]]])), [[[0, 1, 2]]])


def test_ranks_match_a_stable_numpy_sort_of_maps_with_many_ties():
  rng = np.random.default_rng(0)
  maps = rng.integers(-3, 4, size=(3, 9, 7)).astype(np.float32) / 3
  ranks = np.asarray(pixel_ranks(jnp.asarray(maps)))
  for b in range(3):
    order = np.argsort(-maps[b].ravel(), kind="stable")
    expected = np.empty(63, int)
    expected[order] = np.arange(63)
    np.testing.assert_array_equal(ranks[b].ravel(), expected)
    assert sorted(ranks[b].ravel()) == list(range(63))


def test_check_maps():
  images = jnp.zeros((2, 4, 5, 3))
  maps = jax.random.uniform(jax.random.key(0), (2, 4, 5))
  check_maps(maps, images)
  check_maps(maps.at[1].set(1.0), images)  # constant maps allowed by default
  with pytest.raises(ValueError, match=r"maps.*constant.*\[1\]"):
    check_maps(maps.at[1].set(1.0), images, allow_constant=False)
  with pytest.raises(ValueError, match=r"maps must have shape.*\(2, 4, 5\).*\(2, 5, 4\)"):
    check_maps(maps.reshape(2, 5, 4), images)
  with pytest.raises(ValueError, match=r"maps must have shape"):
    check_maps(maps[..., None].repeat(3, -1), images)
  with pytest.raises(ValueError, match=r"maps must be finite.*\[0\]"):
    check_maps(maps.at[0, 1, 1].set(jnp.nan), images)
  with pytest.raises(TypeError, match=r"maps must be floating.*int32"):
    check_maps(maps.astype(jnp.int32), images)
  with pytest.raises(TypeError, match=r"maps must be an array"):
    check_maps([[0.0]], images)
