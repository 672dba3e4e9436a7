"""Tests of the cross-entropy loss against a hand-written log-softmax."""

import float_tolerance
import jax
import numpy as np
import pytest

from salijax.train import loss


def reference_cross_entropy(logits, labels, smoothing):
  """-sum_k target_k * log_softmax(logits)_k, row by row, in float64."""
  logits = np.asarray(logits, np.float64)
  out = []
  for row, label in zip(logits, labels, strict=True):
    shifted = row - row.max()
    log_probs = shifted - np.log(np.exp(shifted).sum())
    target = np.full(row.shape, smoothing / row.size)
    target[label] += 1 - smoothing
    out.append(-(target * log_probs).sum())
  return np.array(out)


def _atol(logits):
  """float32's error of a K-class cross-entropy: the log-softmax of terms within
  2 max|logit| (+ log K) rounds 4 times (shift, exp, log, difference) and the K-term sums."""
  logits = np.abs(np.asarray(logits, np.float64))
  k = logits.shape[-1]
  return float_tolerance.sum_atol(2 * logits.max() + np.log(k), k + 4)


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.3])
def test_cross_entropy_matches_reference(smoothing):
  logits = jax.random.normal(jax.random.key(0), (6, 5)) * 4
  labels = np.array([0, 4, 2, 2, 1, 3])
  got = loss.cross_entropy(logits, labels, label_smoothing=smoothing)
  assert got.shape == (6,)
  np.testing.assert_allclose(got, reference_cross_entropy(logits, labels, smoothing), rtol=0,
                             atol=_atol(logits))


def test_cross_entropy_is_on_logits_not_probabilities():
  # Shifting every logit of a row leaves a softmax cross-entropy unchanged; a
  # loss that took probabilities (softmax applied twice) would change.
  logits = jax.random.normal(jax.random.key(1), (3, 4))
  labels = np.array([1, 0, 3])
  np.testing.assert_allclose(loss.cross_entropy(logits + 7.0, labels),
                             loss.cross_entropy(logits, labels), rtol=0,
                             atol=2 * _atol(logits + 7.0))


def test_correct():
  logits = np.array([[0.1, 0.9, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, 3.0]], np.float32)
  np.testing.assert_array_equal(loss.correct(logits, np.array([1, 1, 2])), [1.0, 0.0, 1.0])
