"""Tests of salijax.methods.gradient_shap: exact on a linear classifier, known answer, draws."""

import float_tolerance
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tiny_classifiers
from integrated_gradients_test import linear_classifier
from random_inputs import random_images

from salijax import methods
from salijax.methods.gradient_shap import draws, gradient_shap

REGION = (8, 24, 24, 40)


@pytest.mark.parametrize("noise", [0.0, 0.1])
def test_equals_the_mean_of_differences_times_weights_on_a_linear_classifier(noise):
  """Every gradient of a linear classifier is w_c: A = (1/n) sum_s (I + e_s - B_k_s) w_c, with
  the draws of `draws`, whatever the points u_s."""
  clf = linear_classifier(8)
  images = np.asarray(random_images(3, (2, 8, 8, 3)), np.float64)
  baselines = np.asarray(random_images(4, (3, 8, 8, 3)), np.float64)
  labels = jnp.array([2, 0])
  key, n = jax.random.key(5), 7
  got = np.asarray(gradient_shap(clf, images, labels, key=key, baselines=baselines,
                                 num_samples=n, noise=noise, chunk=3, reduce="none"), np.float64)
  index, _, eps = (np.asarray(a, np.float64) for a in draws(key, jnp.arange(n), 3, (8, 8, 3)))
  assert len(set(index.tolist())) > 1  # more than one baseline drawn
  delta = (images[:, None] + noise * eps[None] - baselines[index.astype(int)][None]).mean(1)
  w = np.asarray(clf.variables["w"], np.float64)
  for b, label in enumerate([2, 0]):
    want = delta[b] * w[:, label].reshape(8, 8, 3)
    # Each term: the noisy image, the difference, the product (3 roundings); n of them summed.
    scale = (np.abs(images[b]) + noise * np.abs(eps).max() + 1.0) * np.abs(w[:, label]).reshape(
        8, 8, 3)
    np.testing.assert_allclose(got[b], want, rtol=0,
                               atol=float_tolerance.sum_atol(scale, n + 4))


def test_one_baseline_number_is_a_constant_image():
  clf = linear_classifier(8)
  images = random_images(3, (2, 8, 8, 3))
  labels = jnp.array([1, 2])
  key = jax.random.key(1)
  got = gradient_shap(clf, images, labels, key=key, baselines=0.25, num_samples=4, reduce="sum")
  full = gradient_shap(clf, images, labels, key=key, baselines=jnp.full((1, 8, 8, 3), 0.25),
                       num_samples=4, reduce="sum")
  broadcast = gradient_shap(clf, images, labels, key=key, baselines=jnp.full((1, 1, 1, 3), 0.25),
                            num_samples=4, reduce="sum")
  np.testing.assert_array_equal(got, full)
  np.testing.assert_array_equal(broadcast, full)
  assert np.abs(np.asarray(got)).max() > 0


@pytest.mark.parametrize("channel", [None, 1])
def test_known_answer_on_region_classifier(channel):
  """Outside the region (and the channel read) every gradient is 0: so is the attribution;
  from a black baseline the brightness inside is class 0's evidence."""
  clf = tiny_classifiers.region_classifier(48, 48, REGION, channel=channel)
  images = random_images(2, (2, 48, 48, 3), 0.5, 1.0)
  raw = np.asarray(gradient_shap(clf, images, jnp.array([0, 0]), key=jax.random.key(0),
                                 num_samples=8, reduce="none"))
  inside = np.zeros((48, 48), bool)
  y0, y1, x0, x1 = REGION
  inside[y0:y1, x0:x1] = True
  channels = [0, 1, 2] if channel is None else [channel]
  for b in range(2):
    np.testing.assert_array_equal(raw[b][~inside], 0.0)
    assert raw[b][inside][:, channels].min() > 0.0
    np.testing.assert_array_equal(raw[b][..., [c for c in range(3) if c not in channels]], 0.0)


def test_draws_are_uniform_and_per_sample():
  key = jax.random.key(2)
  index, point, eps = draws(key, jnp.arange(4000), 5, (2,))
  counts = np.bincount(np.asarray(index), minlength=5)
  # Binomial counts of 4000 draws at p = 1/5: std ~ 25; 5 std.
  np.testing.assert_allclose(counts, 800, atol=130)
  assert 0.0 <= float(point.min()) and float(point.max()) < 1.0
  assert abs(float(point.mean()) - 0.5) < 5 * np.sqrt(1 / 12 / 4000)
  assert abs(float(eps.std()) - 1.0) < 0.05
  later = draws(key, jnp.arange(10, 20), 5, (2,))  # sample s's draw depends only on s
  np.testing.assert_array_equal(later[1], point[10:20])


def test_bad_baselines():
  clf = linear_classifier(8)
  images = random_images(3, (2, 8, 8, 3))
  call = lambda b: gradient_shap(clf, images, key=jax.random.key(0), baselines=b)  # noqa: E731
  with pytest.raises(TypeError, match="baselines"):
    call("black")
  with pytest.raises(ValueError, match=r"baselines.*\[N,H,W,3\]"):
    call(np.zeros((8, 8, 3)))
  with pytest.raises(ValueError, match=r"baselines.*\[N,H,W,3\]"):
    call(np.zeros((2, 4, 4, 3)))
  with pytest.raises(ValueError, match=r"baselines.*\[0, 1\]"):
    call(np.full((2, 8, 8, 3), 1.5))


def test_cost():
  info = methods.info("gradient_shap")
  assert info.cost(info.resolve({"num_samples": 12, "chunk": 5}), None) == ("gradient", 12, 5)
