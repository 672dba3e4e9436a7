"""Tests of salijax.methods.slic_connectivity."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.ndimage as ndi

from salijax.methods.slic_connectivity import connected_components, merge_small_fragments

_merge = jax.jit(merge_small_fragments, static_argnums=1)


def _blobs(size: int, seed: int) -> np.ndarray:
  """i32[size,size]: 4 labels forming irregular blobs (quantised smooth noise)."""
  noise = ndi.gaussian_filter(np.random.default_rng(seed).normal(size=(size, size)), 2)
  return np.digitize(noise, np.quantile(noise, [0.25, 0.5, 0.75])).astype(np.int32)


def _serpentine(size: int) -> np.ndarray:
  """i32[size,size]: one label winding through every other row (a long thin component)."""
  labels = np.zeros((size, size), np.int32)
  labels[::2] = 1
  for row in range(1, size, 2):
    labels[row, size - 1 if row // 2 % 2 == 0 else 0] = 1
  return labels


@pytest.mark.parametrize("labels", [_blobs(48, 0), _blobs(64, 1), _serpentine(64)],
                         ids=["blobs48", "blobs64", "serpentine"])
def test_components_equal_scipy_label(labels):
  component = np.asarray(jax.jit(connected_components)(jnp.asarray(labels)))
  seen = 0
  for value in np.unique(labels):
    parts, count = ndi.label(labels == value)  # 4-connectivity by default
    for part in range(1, count + 1):
      inside = parts == part
      first = np.flatnonzero(inside.ravel()).min()
      np.testing.assert_array_equal(component[inside], first)
      seen += 1
  assert len(np.unique(component)) == seen


def test_small_island_takes_the_surrounding_label():
  labels = np.zeros((20, 20), np.int32)
  labels[:, 10:] = 1
  labels[4:7, 3:6] = 2  # a 9-pixel island inside label 0
  merged = np.asarray(_merge(jnp.asarray(labels), 20))
  expected = labels.copy()
  expected[4:7, 3:6] = 0
  np.testing.assert_array_equal(merged, expected)


def test_small_detached_fragment_joins_its_neighbour_and_large_ones_stay():
  labels = np.zeros((20, 20), np.int32)
  labels[:, 10:] = 1
  labels[15:18, 14:17] = 0  # a fragment of label 0 inside label 1
  labels[0:10, 0:4] = 2  # large enough: stays
  merged = np.asarray(_merge(jnp.asarray(labels), 20))
  expected = labels.copy()
  expected[15:18, 14:17] = 1
  np.testing.assert_array_equal(merged, expected)


def test_chain_of_small_fragments_ends_in_a_large_segment():
  labels = np.zeros((12, 30), np.int32)
  labels[4:9, 10:15] = 1  # a 16-pixel ring of label 1 in the large label 0 ...
  labels[5:8, 11:14] = 2  # ... around 9 pixels of label 2, which touch only the ring
  merged = np.asarray(_merge(jnp.asarray(labels), 20))
  np.testing.assert_array_equal(merged, np.zeros_like(labels))


def test_nothing_changes_when_every_component_is_large():
  labels = _blobs(48, 2)
  sizes = [np.bincount(ndi.label(labels == v)[0].ravel())[1:].min() for v in np.unique(labels)]
  merged = np.asarray(_merge(jnp.asarray(labels), int(min(sizes))))
  np.testing.assert_array_equal(merged, labels)
