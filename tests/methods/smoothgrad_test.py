"""Tests of salijax.methods.smoothgrad: a slow reference, exact cases, invariances, errors."""

import dataclasses

import float_tolerance
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tiny_classifiers
from random_inputs import random_images

from salijax.classifier import Classifier
from salijax.methods.input_gradients import gradient, guided_backprop
from salijax.methods.integrated_gradients import integrated_gradients
from salijax.methods.map_ops import reduce_channels
from salijax.methods.smoothgrad import smoothgrad

HIGHEST = jax.lax.Precision.HIGHEST
REGION = (8, 24, 24, 40)  # (y0, y1, x0, x1), on the classifiers' 4-pixel grid
KEY = jax.random.key(7)


def reference_smoothgrad(clf, images, labels, key, num_samples, noise):
  """The definition, one image and one noisy copy at a time: the mean raw gradient,
  noise eps_s from fold_in(key, s) scaled by noise * (max - min) of the image.

  Returns it and a bound on its float32 rounding error (random_cnn).
  """
  grad = jax.jit(jax.grad(lambda x, c: clf.apply(clf.variables, x[None])[0, c]))
  out = np.zeros(images.shape)
  atol = 0.0
  for b in range(images.shape[0]):
    image = np.asarray(images[b])
    sigma = noise * (image.max() - image.min())
    scale = 0.0
    for s in range(num_samples):
      eps = np.asarray(jax.random.normal(jax.random.fold_in(key, s), image.shape))
      g = np.asarray(grad(jnp.asarray(image + sigma * eps), labels[b]), np.float64)
      out[b] += g
      scale += np.abs(g).max() / num_samples
    # Each gradient (a random_cnn backward pass, on noise drawn by another program) within
    # its terms' roundings of its largest entry; then the mean of the samples.
    n = tiny_classifiers.random_cnn_terms(image.shape[0] // 4, image.shape[1] // 4)
    atol = max(atol, float_tolerance.sum_atol(scale, n + num_samples + 8))
  return out / num_samples, atol


def test_matches_the_definition_on_random_cnn():
  clf = tiny_classifiers.random_cnn(jax.random.key(0), num_classes=4)
  images = random_images(1, (2, 32, 32, 3))
  labels = jnp.array([3, 0])
  got = smoothgrad(clf, images, labels, key=KEY, num_samples=5, noise=0.2, sample_chunk=2,
                   reduce="none")
  assert got.shape == (2, 32, 32, 3) and got.dtype == jnp.float32
  expected, atol = reference_smoothgrad(clf, images, labels, KEY, 5, 0.2)
  scale = np.abs(expected).max()
  assert scale > 0.0
  np.testing.assert_allclose(got, expected, rtol=0, atol=atol)
  # The mean is taken before the channel reduction.
  maps = smoothgrad(clf, images, labels, key=KEY, num_samples=5, noise=0.2, sample_chunk=2)
  assert maps.shape == (2, 32, 32)
  np.testing.assert_allclose(maps, np.abs(expected).max(-1), rtol=0, atol=atol)
  # Noise changes the map.
  plain = np.asarray(gradient(clf, images, labels, reduce="none"))
  assert np.abs(plain - expected).max() > 0.05 * scale


def test_a_linear_classifier_has_the_same_gradient_everywhere():
  rng = np.random.default_rng(0)
  w = jnp.asarray(rng.normal(size=(8 * 8 * 3, 3)), jnp.float32)
  clf = Classifier(variables={"w": w}, apply=lambda v, x: jnp.dot(
      x.reshape(x.shape[0], -1), v["w"], precision=HIGHEST))
  images = random_images(2, (2, 8, 8, 3))
  labels = jnp.array([2, 1])
  got = smoothgrad(clf, images, labels, key=KEY, num_samples=4, noise=0.5)
  # Every sample's gradient is w_c exactly (a one-hot cotangent): their mean rounds 4 + 2 times.
  np.testing.assert_allclose(got, gradient(clf, images, labels),
                             rtol=float_tolerance.sum_rtol(4 + 2), atol=0)


@pytest.mark.parametrize("method,options", [
    ("gradient", {}),
    ("guided_backprop", {}),
    ("integrated_gradients", {"steps": 4, "baseline": 0.25}),
])
def test_without_noise_it_is_the_wrapped_method(method, options):
  clf = tiny_classifiers.random_cnn(jax.random.key(1))
  clf = dataclasses.replace(clf, guided_apply=clf.apply)  # any apply fits the wrapper
  images = random_images(3, (2, 32, 32, 3))
  labels = jnp.array([1, 2])
  wrapped = {"gradient": gradient, "guided_backprop": guided_backprop,
             "integrated_gradients": integrated_gradients}[method]
  expected = wrapped(clf, images, labels, reduce="none", **options)
  got = smoothgrad(clf, images, labels, key=KEY, method=method, num_samples=3, noise=0.0,
                   reduce="sum", **options)
  # Two programs of the same gradients (random_cnn's terms, 4 path points), relative to the
  # largest entry; then the mean of 3 copies and the channel sum (3 terms).
  n = tiny_classifiers.random_cnn_terms(8, 8) + 4 + 3 + 3
  atol = 2 * float_tolerance.sum_atol(3 * np.abs(np.asarray(expected)).max(), n)
  np.testing.assert_allclose(got, reduce_channels(expected, "sum"), rtol=0, atol=atol)


@pytest.mark.parametrize("baseline_shape", [(2, 8, 8, 3), (8, 8, 3)])
def test_integrated_gradients_options_reach_the_wrapped_method(baseline_shape):
  """A baseline array (traced; per image or shared) and steps (static) are forwarded: on a
  linear classifier without noise A = w_c * (I - baseline)."""
  rng = np.random.default_rng(1)
  w = jnp.asarray(rng.normal(size=(8 * 8 * 3, 2)), jnp.float32)
  clf = Classifier(variables={"w": w}, apply=lambda v, x: jnp.dot(
      x.reshape(x.shape[0], -1), v["w"], precision=HIGHEST))
  images = random_images(4, (2, 8, 8, 3))
  baseline = random_images(5, baseline_shape)
  labels = jnp.array([0, 1])
  got = smoothgrad(clf, images, labels, key=KEY, method="integrated_gradients",
                   num_samples=3, noise=0.0, reduce="none", baseline=baseline, steps=2)
  expected = np.asarray(w).T[np.asarray(labels)].reshape(2, 8, 8, 3) * np.asarray(
      images - baseline)
  # The gradients are w_c exactly: integrated gradients' 2 path points (2 roundings each),
  # I - B and the product, then the mean of 3 equal samples.
  np.testing.assert_allclose(got, expected, rtol=float_tolerance.sum_rtol(2 * 2 + 2 + 3),
                             atol=0)


def test_known_answer_on_region_classifier():
  """The gradient outside the region is 0 for every input, noisy or not."""
  clf = tiny_classifiers.region_classifier(48, 48, REGION)
  images = random_images(2, (2, 48, 48, 3), 0.5, 1.0)
  maps = np.asarray(smoothgrad(clf, images, jnp.array([0, 1]), key=KEY, num_samples=6))
  inside = np.zeros((48, 48), bool)
  y0, y1, x0, x1 = REGION
  inside[y0:y1, x0:x1] = True
  for b in range(2):
    assert maps[b][inside].min() > 0.0
    np.testing.assert_array_equal(maps[b][~inside], 0.0)


def test_chunk_and_batch_invariance_jit_and_no_recompilation():
  clf = tiny_classifiers.random_cnn(jax.random.key(3))
  images = random_images(6, (3, 32, 32, 3))
  labels = jnp.array([1, 0, 2])
  batch = smoothgrad(clf, images, labels, key=KEY, num_samples=5, sample_chunk=2)
  # Other programs, each within the reference's bound of the exact maps (noise 0.15).
  tol = {"rtol": 0,
         "atol": 2 * reference_smoothgrad(clf, images, labels, KEY, 5, 0.15)[1]}
  # Alone, and in one chunk of 5 samples instead of 3 chunks of 2 (one padded).
  alone = smoothgrad(clf, images[2:3], labels[2:3], key=KEY, num_samples=5, sample_chunk=5)
  np.testing.assert_allclose(alone[0], batch[2], **tol)
  inside_jit = jax.jit(lambda x, y, k: smoothgrad(clf, x, y, key=k, num_samples=5,
                                                  sample_chunk=2))(images, labels, KEY)
  np.testing.assert_allclose(inside_jit, batch, **tol)
  other_key = smoothgrad(clf, images, labels, key=jax.random.key(8), num_samples=5,
                         sample_chunk=2)
  assert np.abs(np.asarray(other_key - batch)).max() > 1e-3 * float(batch.max())


def test_the_averaged_methods_checks_apply():
  """The averaged method and its options are checked (by a dry run) before anything runs."""
  clf = tiny_classifiers.region_classifier(32, 32, (8, 16, 8, 16))
  images = random_images(0, (2, 32, 32, 3))
  labels = jnp.array([0, 1])
  with pytest.raises(ValueError, match="method.*'gradcam'"):
    smoothgrad(clf, images, labels, key=KEY, method="gradcam")
  with pytest.raises(ValueError, match="clf: .*guided_apply"):
    smoothgrad(clf, images, labels, key=KEY, method="guided_backprop")
  with pytest.raises(ValueError, match="baseline"):
    smoothgrad(clf, images, labels, key=KEY, method="integrated_gradients",
               baseline=jnp.full((32, 32, 3), 2.0))
  with pytest.raises(ValueError, match="steps"):
    smoothgrad(clf, images, labels, key=KEY, method="integrated_gradients", steps=0)
  with pytest.raises(TypeError, match="steps"):
    smoothgrad(clf, images, labels, key=KEY, method="gradient", steps=3)
