"""Tests of salijax.methods.integrated_gradients: a slow reference, completeness, known answer."""

import float_tolerance
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tiny_classifiers
from random_inputs import random_images

from salijax.classifier import Classifier
from salijax.methods.integrated_gradients import (
    RULES,
    integrated_gradients,
)

HIGHEST = jax.lax.Precision.HIGHEST
REGION = (8, 24, 24, 40)  # (y0, y1, x0, x1), on the classifiers' 4-pixel grid


def quadrature(steps: int, rule: str) -> list[tuple[float, float]]:
  """(a_k, w_k) of each rule, written out from its textbook definition."""
  m = steps
  if rule == "right":
    return [(k / m, 1 / m) for k in range(1, m + 1)]
  if rule == "left":
    return [(k / m, 1 / m) for k in range(m)]
  if rule == "midpoint":
    return [((k + 0.5) / m, 1 / m) for k in range(m)]
  return [(k / m, (0.5 if k in (0, m) else 1.0) / m) for k in range(m + 1)]


@jax.jit
def target_logit_gradient(clf, image, label):
  """jax.grad of one image's target logit, f32[H,W,3]."""
  return jax.grad(lambda x: clf.apply(clf.variables, x[None])[0, label])(image)


def reference_integrated_gradients(clf, images, labels, baseline, steps, rule):
  """The definition, one image and one path point at a time, with jax.grad; f64[B,H,W,3],
  and a bound on its float32 rounding error (for random_cnn)."""
  images = np.asarray(images, np.float64)
  baseline = np.broadcast_to(np.asarray(baseline, np.float64), images.shape)
  out = np.zeros(images.shape)
  atol = 0.0
  for b in range(images.shape[0]):
    scale = 0.0
    for alpha, weight in quadrature(steps, rule):
      point = baseline[b] + alpha * (images[b] - baseline[b])
      grad = np.asarray(target_logit_gradient(clf, jnp.asarray(point, jnp.float32), labels[b]))
      out[b] += weight * grad
      scale += weight * np.abs(grad).max()
    out[b] *= images[b] - baseline[b]
    # Each gradient (a random_cnn backward pass) within its terms' roundings of its largest
    # entry; then the weighted sum over the path points and the product with I - B.
    n = tiny_classifiers.random_cnn_terms(images.shape[1] // 4, images.shape[2] // 4)
    atol = max(atol, float_tolerance.sum_atol(
        scale * np.abs(images[b] - baseline[b]).max(), n + steps + 4))
  return out, atol


RANDOM_CNN = tiny_classifiers.random_cnn(jax.random.key(0), num_classes=4)


@pytest.mark.parametrize("rule", RULES)
def test_matches_the_definition_on_random_cnn(rule):
  clf = RANDOM_CNN
  images = random_images(1, (2, 32, 32, 3))
  labels = jnp.array([3, 1])
  baseline = random_images(2, (32, 32, 3))  # one baseline for both images
  got = integrated_gradients(clf, images, labels, baseline=baseline, steps=7, rule=rule,
                             chunk=3, reduce="none")
  assert got.shape == (2, 32, 32, 3) and got.dtype == jnp.float32
  expected, atol = reference_integrated_gradients(clf, images, labels, baseline, 7, rule)
  assert np.abs(expected).max() > 0.0
  np.testing.assert_allclose(got, expected, rtol=0, atol=atol)


def linear_classifier(size: int, classes: int = 3) -> Classifier:
  rng = np.random.default_rng(0)
  variables = {"w": jnp.asarray(rng.normal(size=(size * size * 3, classes)), jnp.float32),
               "b": jnp.asarray(rng.normal(size=classes), jnp.float32)}

  def apply(v, images):
    return jnp.dot(images.reshape(images.shape[0], -1), v["w"], precision=HIGHEST) + v["b"]

  return Classifier(variables=variables, apply=apply)


def target_logits(clf, images, labels) -> np.ndarray:
  logits = np.asarray(clf.apply(clf.variables, jnp.asarray(images, jnp.float32)), np.float64)
  return logits[np.arange(len(labels)), np.asarray(labels)]


@pytest.mark.parametrize("rule", RULES)
def test_completeness_is_exact_on_a_linear_classifier(rule):
  """A = w_c * (I - B) exactly, whatever the rule and the number of steps."""
  clf = linear_classifier(8)
  images = random_images(3, (2, 8, 8, 3))
  labels = jnp.array([2, 0])
  baseline = random_images(4, (2, 8, 8, 3))  # one baseline per image
  got = np.asarray(integrated_gradients(clf, images, labels, baseline=baseline, steps=3,
                                        rule=rule, reduce="none"), np.float64)
  w = np.asarray(clf.variables["w"], np.float64)
  delta = np.asarray(images, np.float64) - np.asarray(baseline, np.float64)
  # Every gradient is w_c exactly (one-hot cotangent): A = (I - B) w_c sum_k weight_k, whose
  # <= 4 path points each round twice (product, sum), and I - B and the product once each.
  for b, label in enumerate([2, 0]):
    np.testing.assert_allclose(got[b], w[:, label].reshape(8, 8, 3) * delta[b],
                               rtol=float_tolerance.sum_rtol(2 * 4 + 2), atol=0)
  difference = target_logits(clf, images, labels) - target_logits(clf, baseline, labels)
  # Each logit sums 192 products and the bias, relative to their magnitudes.
  pixels = np.abs(np.asarray(images, np.float64)) + np.abs(np.asarray(baseline, np.float64))
  bias = np.abs(np.asarray(clf.variables["b"], np.float64))
  magnitude = pixels.reshape(2, -1) @ np.abs(w) + 2 * bias
  atol = float_tolerance.sum_atol(magnitude, 192 + 1 + 2 * 4 + 2 + 3)
  np.testing.assert_allclose(got.sum(axis=(1, 2, 3)), difference, rtol=0, atol=atol)
  summed = integrated_gradients(clf, images, labels, baseline=baseline, steps=3, rule=rule,
                                reduce="sum")
  np.testing.assert_allclose(np.asarray(summed).sum(axis=(1, 2)), difference, rtol=0, atol=atol)


def smooth_classifier(size: int, classes: int = 2, hidden: int = 6) -> Classifier:
  """y = sum_j a_jc tanh(I . w_j + b_j): analytic, nonlinear along every path."""
  rng = np.random.default_rng(1)
  variables = {"w": jnp.asarray(rng.normal(size=(size * size * 3, hidden)) * 0.2, jnp.float32),
               "b": jnp.asarray(rng.normal(size=hidden), jnp.float32),
               "a": jnp.asarray(rng.normal(size=(hidden, classes)), jnp.float32)}

  def apply(v, images):
    pre = jnp.dot(images.reshape(images.shape[0], -1), v["w"], precision=HIGHEST) + v["b"]
    return jnp.dot(jnp.tanh(pre), v["a"], precision=HIGHEST)

  return Classifier(variables=variables, apply=apply)


@pytest.mark.parametrize("rule,order", [("right", 1), ("left", 1), ("midpoint", 2),
                                        ("trapezoid", 2)])
def test_completeness_error_shrinks_with_the_rules_order_on_a_smooth_classifier(rule, order):
  """|sum A - (y_c(I) - y_c(0))| is O(1/m) for right/left sums, O(1/m^2) for midpoint and
  trapezoid: doubling m divides it by about 2 or 4."""
  clf = smooth_classifier(8)
  images = random_images(5, (2, 8, 8, 3))
  labels = jnp.array([0, 1])
  difference = target_logits(clf, images, labels) - target_logits(clf, np.zeros((2, 8, 8, 3)),
                                                                  labels)
  assert np.abs(difference).min() > 0.1
  errors = []
  for steps in (8, 16, 32):
    attributions = integrated_gradients(clf, images, labels, steps=steps, rule=rule,
                                        reduce="none")
    errors.append(np.abs(np.asarray(attributions, np.float64).sum(axis=(1, 2, 3)) - difference))
  errors = np.asarray(errors)  # [3 step counts, 2 images]
  assert (errors[-1] < {1: 0.05, 2: 1e-3}[order] * np.abs(difference)).all()
  ratios = errors[:-1] / errors[1:]
  # Truncation, not rounding: these errors are >= 1e-4 of |difference|, float32's ~1e-7.
  np.testing.assert_allclose(ratios, 2.0**order, rtol=0.25)


@pytest.mark.parametrize("channel", [None, 1])
def test_known_answer_on_region_classifier(channel):
  """Outside the region the gradient is 0 on the whole path: so is the attribution; the
  brightness in the region is evidence for class 0, so its attributions there are > 0."""
  clf = tiny_classifiers.region_classifier(48, 48, REGION, channel=channel)
  images = random_images(2, (2, 48, 48, 3), 0.5, 1.0)
  raw = np.asarray(integrated_gradients(clf, images, jnp.array([0, 0]), steps=16,
                                        reduce="none"))
  inside = np.zeros((48, 48), bool)
  y0, y1, x0, x1 = REGION
  inside[y0:y1, x0:x1] = True
  channels = [0, 1, 2] if channel is None else [channel]
  for b in range(2):
    np.testing.assert_array_equal(raw[b][~inside], 0.0)
    assert raw[b][inside][:, channels].min() > 0.0
    others = [c for c in range(3) if c not in channels]
    np.testing.assert_array_equal(raw[b][..., others], 0.0)
  maps = np.asarray(integrated_gradients(clf, images, jnp.array([0, 1]), steps=16))
  for b in range(2):
    assert maps[b][inside].min() > 0.0 and (maps[b][~inside] == 0.0).all()


def test_chunk_and_batch_invariance_jit_and_no_recompilation():
  clf = tiny_classifiers.random_cnn(jax.random.key(3))
  images = random_images(6, (3, 32, 32, 3))
  labels = jnp.array([1, 0, 2])
  batch = integrated_gradients(clf, images, labels, steps=6, chunk=4)
  # Other programs, each within the reference's bound of the exact maps.
  tol = {"rtol": 0,
         "atol": 2 * reference_integrated_gradients(clf, images, labels, 0.0, 6, "right")[1]}
  np.testing.assert_allclose(integrated_gradients(clf, images, labels, steps=6, chunk=1), batch,
                             **tol)
  # Alone, and in one chunk of 6 points instead of 2 chunks of 4 (one padded).
  alone = integrated_gradients(clf, images[2:3], labels[2:3], steps=6, chunk=6)
  np.testing.assert_allclose(alone[0], batch[2], **tol)
  inside_jit = jax.jit(lambda x, y: integrated_gradients(clf, x, y, steps=6, chunk=4))(
      images, labels)
  np.testing.assert_allclose(inside_jit, batch, **tol)


def test_bad_baselines():
  """The baseline's own checks (the shared ones are in registry_test.py)."""
  clf = linear_classifier(8)
  images = random_images(0, (2, 8, 8, 3))
  labels = jnp.array([0, 1])
  with pytest.raises(ValueError, match=r"baseline.*\[0, 1\]"):
    integrated_gradients(clf, images, labels, baseline=1.5)
  with pytest.raises(ValueError, match="baseline"):
    integrated_gradients(clf, images, labels, baseline=jnp.full((8, 8, 3), jnp.nan))
  with pytest.raises(ValueError, match=r"baseline.*shape \(4, 8, 8, 3\)"):
    integrated_gradients(clf, images, labels, baseline=jnp.zeros((4, 8, 8, 3)))
  with pytest.raises(TypeError, match="baseline"):
    integrated_gradients(clf, images, labels, baseline="black")
  with pytest.raises(TypeError, match="baseline"):
    integrated_gradients(clf, images, labels, baseline=True)
