"""Tests of salijax.report.prediction_diagnostics."""

import numpy as np
import pytest

from salijax.report.prediction_diagnostics import prediction_diagnostics

NAMES = ("circle", "square", "triangle", "star")


def test_most_and_least_likely_classes_with_their_probabilities():
  probabilities = np.array([[0.1, 0.6, 0.2, 0.1], [0.25, 0.25, 0.4, 0.1]], np.float32)
  got = prediction_diagnostics(probabilities, NAMES, top_k=2)
  assert [c["class"] for c in got[0]["most_likely"]] == [1, 2]
  # Ties go to the lower class index, in both lists.
  assert [c["class"] for c in got[0]["least_likely"]] == [0, 3]
  assert [c["class"] for c in got[1]["most_likely"]] == [2, 0]
  assert [c["name"] for c in got[1]["least_likely"]] == ["star", "circle"]
  assert got[1]["most_likely"][0]["probability"] == pytest.approx(0.4)
  for image, p in zip(got, probabilities, strict=True):
    assert image["most_likely"][0]["class"] == np.argmax(p)
    assert image["least_likely"][0]["class"] == np.argmin(p)


def test_matches_a_sort_of_every_class():
  rng = np.random.default_rng(0)
  probabilities = rng.dirichlet(np.ones(4), size=6)
  got = prediction_diagnostics(probabilities, NAMES, top_k=3)
  for image, p in zip(got, probabilities, strict=True):
    order = sorted(range(4), key=lambda c: -p[c])
    assert [c["class"] for c in image["most_likely"]] == order[:3]
    assert [c["class"] for c in image["least_likely"]] == order[::-1][:3]
    assert [c["probability"] for c in image["most_likely"]] == [float(p[c]) for c in order[:3]]


def test_k_larger_than_the_classes_lists_every_class():
  got = prediction_diagnostics(np.eye(4)[:1], NAMES, top_k=10)
  assert len(got[0]["most_likely"]) == len(got[0]["least_likely"]) == 4


@pytest.mark.parametrize("probabilities, names, top_k, error, match", [
    (np.ones((2, 4)), NAMES, 0, ValueError, "top_k"),
    (np.ones((2, 4)), NAMES, 1.5, TypeError, "top_k"),
    (np.ones((2, 4)), NAMES[:3], 2, ValueError, "class_names"),
    (np.ones((2, 4)), "abcd", 2, TypeError, "class_names"),
    (np.ones(4), NAMES, 2, ValueError, "probabilities"),
    (np.full((1, 4), np.nan), NAMES, 2, ValueError, "probabilities"),
    ([[0.5, 0.5, 0.0, 0.0]], NAMES, 2, TypeError, "probabilities"),
])
def test_bad_inputs_are_named(probabilities, names, top_k, error, match):
  with pytest.raises(error, match=match):
    prediction_diagnostics(probabilities, names, top_k=top_k)
