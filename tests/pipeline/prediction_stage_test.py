"""Tests of salijax.pipeline.prediction_stage.explained_labels (the label modes)."""

import numpy as np
import pytest

from salijax.pipeline.prediction_stage import explained_labels

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
