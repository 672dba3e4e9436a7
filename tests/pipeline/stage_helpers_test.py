"""Tests of salijax.pipeline.stage_helpers: the label modes, padding and method keys."""

import zlib

import jax
import numpy as np
import pytest

from salijax.pipeline.stage_helpers import explained_labels, method_key, padded

PROBABILITIES = np.array([[0.1, 0.6, 0.2, 0.1], [0.3, 0.3, 0.2, 0.2]], np.float32)
TRUE = np.array([2, 0], np.int32)


def test_each_label_mode_picks_its_class():
  np.testing.assert_array_equal(explained_labels("ground_truth", TRUE, PROBABILITIES), TRUE)
  # Ties go to the lowest class index.
  np.testing.assert_array_equal(explained_labels("predicted", TRUE, PROBABILITIES), [1, 0])
  np.testing.assert_array_equal(explained_labels("least_likely", TRUE, PROBABILITIES), [0, 2])
  assert explained_labels("least_likely", TRUE, PROBABILITIES).dtype == np.int32


def test_an_unknown_label_mode_is_named():
  with pytest.raises(ValueError, match="label_mode"):
    explained_labels("top1", TRUE, PROBABILITIES)


def test_padded_repeats_the_last_row():
  values = np.arange(6).reshape(3, 2)
  np.testing.assert_array_equal(padded(values, 5), [[0, 1], [2, 3], [4, 5], [4, 5], [4, 5]])
  np.testing.assert_array_equal(padded(values, 3), values)


def test_method_keys_depend_on_seed_method_and_batch_only():
  def data(key):
    return tuple(np.asarray(jax.random.key_data(key)).ravel())

  # The benchmark's keys since the first release: fold_in(fold_in(key(seed), crc32), batch).
  method_id = zlib.crc32(b"rise") & 0x7FFFFFFF
  want = jax.random.fold_in(jax.random.fold_in(jax.random.key(3), method_id), 2)
  assert data(method_key(3, "rise", 2)) == data(want)
  keys = {data(method_key(s, m, b)) for s in (0, 1) for m in ("rise", "lime") for b in (0, 1)}
  assert len(keys) == 8
