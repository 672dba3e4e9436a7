"""Tests of salijax.methods.input_x_gradient: exact on a linear classifier, known answer."""

import float_tolerance
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tiny_classifiers
from integrated_gradients_test import linear_classifier
from random_inputs import random_images

from salijax import methods
from salijax.methods.input_x_gradient import input_x_gradient
from salijax.methods.map_ops import REDUCTIONS

REGION = (8, 24, 24, 40)  # (y0, y1, x0, x1), on the classifiers' 4-pixel grid


def test_equals_image_times_weights_on_a_linear_classifier():
  """The gradient of a linear classifier's logit c is w_c exactly: A = I * w_c, one rounding."""
  clf = linear_classifier(8)
  images = random_images(3, (2, 8, 8, 3))
  labels = jnp.array([2, 0])
  got = np.asarray(input_x_gradient(clf, images, labels, reduce="none"), np.float64)
  w = np.asarray(clf.variables["w"], np.float64)
  for b, label in enumerate([2, 0]):
    want = np.asarray(images[b], np.float64) * w[:, label].reshape(8, 8, 3)
    np.testing.assert_allclose(got[b], want, rtol=float_tolerance.sum_rtol(1), atol=0)


@pytest.mark.parametrize("reduce", REDUCTIONS[:-1])
def test_reductions_reduce_the_raw_attributions(reduce):
  clf = tiny_classifiers.random_cnn(jax.random.key(1))
  images = random_images(2, (2, 16, 16, 3))
  labels = jnp.array([1, 3])
  raw = np.asarray(input_x_gradient(clf, images, labels, reduce="none"), np.float64)
  want = {"max_abs": np.abs(raw).max(-1), "abs_sum": np.abs(raw).sum(-1),
          "sum": raw.sum(-1)}[reduce]
  got = np.asarray(input_x_gradient(clf, images, labels, reduce=reduce))
  # Another program: the gradients round differently, within the network's terms.
  n = tiny_classifiers.random_cnn_terms(4, 4) + 3
  np.testing.assert_allclose(got, want, rtol=0,
                             atol=float_tolerance.sum_atol(np.abs(raw).sum(-1), n))


@pytest.mark.parametrize("channel", [None, 1])
def test_known_answer_on_region_classifier(channel):
  """Outside the region (and the channel read) the gradient is 0, so is the attribution;
  brightness in the region is class 0's evidence: positive attributions there."""
  clf = tiny_classifiers.region_classifier(48, 48, REGION, channel=channel)
  images = random_images(2, (2, 48, 48, 3), 0.5, 1.0)
  raw = np.asarray(input_x_gradient(clf, images, jnp.array([0, 0]), reduce="none"))
  inside = np.zeros((48, 48), bool)
  y0, y1, x0, x1 = REGION
  inside[y0:y1, x0:x1] = True
  channels = [0, 1, 2] if channel is None else [channel]
  for b in range(2):
    np.testing.assert_array_equal(raw[b][~inside], 0.0)
    assert raw[b][inside][:, channels].min() > 0.0
    np.testing.assert_array_equal(raw[b][..., [c for c in range(3) if c not in channels]], 0.0)


def test_registered_with_one_gradient_pass():
  info = methods.info("input_x_gradient")
  assert methods.get("input_x_gradient") is methods.input_x_gradient
  assert info.cost(info.defaults(), None) == ("gradient", 1, 1)
