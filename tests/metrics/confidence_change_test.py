"""Tests of salijax.metrics.confidence_change."""

import functools

import float_tolerance
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tiny_classifiers
from random_inputs import random_images

from salijax.classifier import Classifier
from salijax.metrics.confidence_change import (
    ConfidenceChange,
    _confidence_change,
    confidence_change,
    summarize_confidence_change,
)


def reference(clf, images, maps, labels):
  """docs/metrics.md#confidence_change literally, in float64, one forward per image (L01 = 1
  for a constant map).

  Returns the fields' columns and bounds on their float32 rounding errors (random_cnn).
  """
  apply = jax.jit(clf.apply)
  terms = jax.jit(functools.partial(tiny_classifiers.logit_terms, clf))
  n = tiny_classifiers.random_cnn_terms(images.shape[1] // 4, images.shape[2] // 4) + 8

  def prob(image, label):
    """The probability and its bound: logits within dz make it within p (2 dz + ...)."""
    image = jnp.asarray(image[None], jnp.float32)
    logits = np.asarray(apply(clf.variables, image)[0], np.float64)
    p = (np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum())[label]
    dz = float_tolerance.sum_atol(terms(image), n)
    return p, p * (2 * dz + (len(logits) + 3) * float_tolerance.EPS)

  rows, bounds = [], []
  for image, saliency, label in zip(np.asarray(images, np.float64),
                                    np.asarray(maps, np.float64), np.asarray(labels), strict=True):
    span = saliency.max() - saliency.min()
    unit = (saliency - saliency.min()) / span if span > 0 else np.ones_like(saliency)
    (y, dy), (o, do) = prob(image, label), prob(unit[..., None] * image, label)
    rows.append((max(0.0, y - o) / y, o > y, max(0.0, o - y) / (1 - y), y, o))
    bounds.append(((dy + do + rows[-1][0] * dy) / y + 3 * float_tolerance.EPS, 0,
                   (dy + do + rows[-1][2] * dy) / (1 - y) + 3 * float_tolerance.EPS, dy, do))
  return ([np.array(column) for column in zip(*rows, strict=True)],
          [max(b) for b in zip(*bounds, strict=True)])


def test_matches_direct_computation():
  clf = tiny_classifiers.random_cnn(jax.random.key(0), num_classes=4)
  images = random_images(1, (5, 16, 20, 3))
  maps = random_images(2, (5, 16, 20), low=-2.0, high=3.0)
  maps = maps.at[3].set(0.7)  # a constant map: E = I
  labels = jnp.array([0, 1, 2, 3, 1])
  got = confidence_change(clf, images, maps, labels)
  expected, bounds = reference(clf, images, maps, labels)
  for name, value, want, atol in zip(ConfidenceChange._fields, got, expected, bounds,
                                     strict=True):
    assert value.shape == (5,), name
    np.testing.assert_allclose(value, want, rtol=0, atol=atol, err_msg=name)
  assert got.increase.dtype == jnp.bool_
  assert got.drop[3] == 0 and got.gain[3] == 0 and not got.increase[3]
  assert got.increase.any() and not got.increase.all()  # both cases are exercised


REGION = (4, 20, 8, 24)  # aligned with the classifier's 4 x 4 pooling


def test_keeping_exactly_the_region_changes_nothing_and_removing_it_moves_both_classes():
  """The classifier sees only REGION: a map that keeps it exactly gives O = Y.

  With its complement, E is black in REGION: class 0 (rising with brightness there) drops,
  class 1 (falling with it) increases.
  """
  clf = tiny_classifiers.region_classifier(24, 32, REGION, num_classes=2)
  images = random_images(3, (2, 24, 32, 3), low=0.5)
  inside = np.zeros((24, 32), np.float32)
  inside[REGION[0]:REGION[1], REGION[2]:REGION[3]] = 1.0
  for label in (0, 1):
    labels = jnp.full(2, label, jnp.int32)
    kept = confidence_change(clf, images, jnp.asarray(np.stack([inside] * 2)), labels)
    np.testing.assert_array_equal(kept.explanation_score, kept.score)
    np.testing.assert_array_equal(kept.drop, 0.0)
    np.testing.assert_array_equal(kept.gain, 0.0)
    assert not kept.increase.any()
  removed0 = confidence_change(clf, images, jnp.asarray(np.stack([1 - inside] * 2)),
                               jnp.zeros(2, jnp.int32))
  assert (removed0.drop > 0.3).all() and not removed0.increase.any()
  np.testing.assert_array_equal(removed0.gain, 0.0)
  removed1 = confidence_change(clf, images, jnp.asarray(np.stack([1 - inside] * 2)),
                               jnp.ones(2, jnp.int32))
  assert removed1.increase.all() and (removed1.gain > 0).all()
  np.testing.assert_array_equal(removed1.drop, 0.0)
  # The same float32 scores: a subtraction and a division each (3 roundings).
  np.testing.assert_allclose(removed1.gain, (removed1.explanation_score - removed1.score)
                             / (1 - removed1.score), rtol=float_tolerance.sum_rtol(3), atol=0)


def test_saturated_scores_give_zero_not_nan():
  """Y = 1 (gain's 0 / 0) and Y = 0 (drop's 0 / 0) are defined as 0."""
  clf = Classifier(variables={}, apply=lambda v, x: jnp.stack(
      [1e4 * x.mean(axis=(1, 2, 3)), jnp.zeros(x.shape[0])], axis=1))
  images = jnp.full((2, 8, 8, 3), 0.9)
  maps = jnp.ones((2, 8, 8)).at[:, 0, 0].set(0.0)
  result = confidence_change(clf, images, maps, jnp.array([0, 1]))
  np.testing.assert_array_equal(result.score, [1.0, 0.0])
  assert np.isfinite(np.asarray(result.drop)).all() and np.isfinite(result.gain).all()
  np.testing.assert_array_equal(result.gain, [0.0, 0.0])
  np.testing.assert_array_equal(result.drop, [0.0, 0.0])


def test_summary_averages_the_valid_images_in_percent():
  result = ConfidenceChange(drop=jnp.array([0.5, 0.1, 0.9]),
                            increase=jnp.array([True, False, True]),
                            gain=jnp.array([0.2, 0.0, 0.4]),
                            score=jnp.zeros(3), explanation_score=jnp.zeros(3))
  summary = summarize_confidence_change(result)
  # Means of <= 3 float32 values (themselves rounded), times 100: a few roundings.
  np.testing.assert_allclose([summary["average_drop"], summary["increase_in_confidence"],
                              summary["average_gain"]], [50.0, 200 / 3, 20.0],
                             rtol=float_tolerance.sum_rtol(3 + 3), atol=0)
  masked = summarize_confidence_change(result, np.array([True, True, False]))
  np.testing.assert_allclose([masked["average_drop"], masked["increase_in_confidence"],
                              masked["average_gain"]], [30.0, 50.0, 10.0],
                             rtol=float_tolerance.sum_rtol(3 + 3), atol=0)
  with pytest.raises(ValueError, match=r"valid must be bool\[3\]"):
    summarize_confidence_change(result, np.array([1, 1, 0]))
  with pytest.raises(ValueError, match=r"valid must be bool\[3\]"):
    summarize_confidence_change(result, np.array([True, False]))
  with pytest.raises(ValueError, match="at least one"):
    summarize_confidence_change(result, np.zeros(3, bool))


def test_batch_composition_no_recompilation_and_jit():
  clf = tiny_classifiers.random_cnn(jax.random.key(4), num_classes=3)
  images = random_images(5, (3, 16, 16, 3))
  maps = random_images(6, (3, 16, 16))
  labels = jnp.array([2, 0, 1])
  full = confidence_change(clf, images, maps, labels)
  size = _confidence_change._cache_size()
  other = confidence_change(clf, images[::-1], maps, labels)
  assert _confidence_change._cache_size() == size
  assert not np.allclose(other.score, full.score)
  # Other programs, each within the reference's bounds.
  atol = 2 * max(reference(clf, images, maps, labels)[1])
  one = confidence_change(clf, images[1:2], maps[1:2], labels[1:2])
  for got, expected in zip(one, full, strict=True):
    np.testing.assert_allclose(got, expected[1:2], rtol=0, atol=atol)
  jitted = jax.jit(lambda c, x, m, y: confidence_change(c, x, m, y).drop)
  np.testing.assert_allclose(jitted(clf, images, maps, labels), full.drop, rtol=0, atol=atol)


def test_labels_none_scores_the_predicted_classes():
  clf = tiny_classifiers.random_cnn(jax.random.key(6), num_classes=4)
  images = tiny_classifiers.tinted_images(size=16)
  maps = random_images(1, (3, 16, 16))
  predicted = jnp.argmax(clf.apply(clf.variables, images), -1)
  assert len(set(predicted.tolist())) > 1
  expected = confidence_change(clf, images, maps, predicted)
  for got in (confidence_change(clf, images, maps, None), confidence_change(clf, images, maps)):
    for name, value, want in zip(ConfidenceChange._fields, got, expected, strict=True):
      np.testing.assert_array_equal(value, want, err_msg=name)


@pytest.mark.parametrize("change,error,pattern", [
    (dict(maps=jnp.ones((2, 16, 17))), ValueError, r"maps must have shape"),
    (dict(maps=jnp.full((2, 16, 16), jnp.nan)), ValueError, r"maps must be finite"),
    (dict(maps=jnp.ones((2, 16, 16), jnp.int32)), TypeError, r"maps must be floating"),
    (dict(labels=jnp.array([0, -1])), ValueError, r"labels.*\[-1\]"),
    (dict(labels=jnp.array([0, 1, 2])), ValueError, r"labels must have shape \[2\]"),
    (dict(images=jnp.full((2, 16, 16, 3), -0.5)), ValueError, r"images.*\[0, 1\]"),
])
def test_bad_inputs(change, error, pattern):
  clf = tiny_classifiers.random_cnn(jax.random.key(0), num_classes=3)
  args = dict(images=random_images(0, (2, 16, 16, 3)), maps=random_images(1, (2, 16, 16)),
              labels=jnp.array([0, 1])) | change
  with pytest.raises(error, match=pattern):
    confidence_change(clf, args["images"], args["maps"], args["labels"])
  with pytest.raises(TypeError, match="clf must be a salijax.Classifier"):
    confidence_change(clf.apply, args["images"], args["maps"], args["labels"])
