"""Tests of salijax.visualisation.class_model: numpy reference, closed-form optima, invariance."""

import math
import pathlib
import sys

import float_tolerance
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from salijax.classifier import Classifier
from salijax.visualisation.class_model import _class_model, class_model

# Module-scoped fixtures: one worker runs the whole group, so they are built once.
pytestmark = pytest.mark.xdist_group("class_model")

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "methods"))
import tiny_classifiers  # noqa: E402 - tests/methods, put on the path just above

ADAM_B1, ADAM_B2, ADAM_EPS = 0.9, 0.999, 1e-8  # optax.adam's defaults
STEPS = 20  # of the random CNN's class models


def linear_classifier(height: int, width: int, num_classes: int = 3, scale: float = 0.8,
                      seed: int = 0) -> Classifier:
  """S_k(I) = w_k . I + b_k with w_k ~ N(0, scale^2) per pixel value."""
  rng = np.random.default_rng(seed)
  variables = {"w": jnp.asarray(rng.normal(0, scale, (height * width * 3, num_classes)),
                                jnp.float32),
               "b": jnp.asarray(rng.normal(size=num_classes), jnp.float32)}

  def apply(v, images):
    flat = images.reshape(images.shape[0], -1)
    return jnp.dot(flat, v["w"], precision=jax.lax.Precision.HIGHEST) + v["b"]

  return Classifier(variables=variables, apply=apply)


def reference(value_and_grad, init, steps, learning_rate, l2):
  """Projected Adam ascent of S_c(I) - l2 ||I - 0.5||^2 in float64, one image, by hand.

  `value_and_grad(image f64[H,W,3]) -> (S_c, dS_c/dI)`. Returns (image, logit trace,
  objective trace), trace entry t after t updates.
  """
  x = np.asarray(init, np.float64)
  m, v = np.zeros_like(x), np.zeros_like(x)
  logits, objectives = [], []
  for t in range(steps + 1):
    logit, grad = value_and_grad(x)
    logits.append(logit)
    objectives.append(logit - l2 * np.sum((x - 0.5) ** 2))
    if t == steps:
      break
    ascent = np.asarray(grad, np.float64) - 2 * l2 * (x - 0.5)
    m = ADAM_B1 * m + (1 - ADAM_B1) * ascent
    v = ADAM_B2 * v + (1 - ADAM_B2) * ascent ** 2
    m_hat, v_hat = m / (1 - ADAM_B1 ** (t + 1)), v / (1 - ADAM_B2 ** (t + 1))
    rate = learning_rate * 0.5 * (1 + math.cos(math.pi * t / steps))
    x = np.clip(x + rate * m_hat / (np.sqrt(v_hat) + ADAM_EPS), 0.0, 1.0)
  return x, np.array(logits), np.array(objectives)


def test_matches_a_numpy_adam_reference_on_a_linear_classifier():
  clf = linear_classifier(6, 5)
  w = np.asarray(clf.variables["w"], np.float64)
  b = np.asarray(clf.variables["b"], np.float64)
  labels = np.array([2, 0], np.int32)
  got = class_model(clf, labels, image_size=(6, 5), steps=40, learning_rate=0.1, l2=0.5)
  assert got.images.shape == (2, 6, 5, 3) and got.images.dtype == jnp.float32
  assert got.target_logit.shape == got.objective.shape == (2, 41)
  for row, label in enumerate(labels):
    def value_and_grad(x, label=label):
      return x.reshape(-1) @ w[:, label] + b[label], w[:, label].reshape(x.shape)
    image, logits, objectives = reference(value_and_grad, np.full((6, 5, 3), 0.5), 40, 0.1, 0.5)
    # 40 float32 steps, each rounding the pixels (in [0, 1]) and Adam's step: ~2 eps a step.
    image_atol = 40 * 2 * float_tolerance.EPS
    np.testing.assert_allclose(got.images[row], image, rtol=0, atol=image_atol)
    # Then the logit's error: ||w_c||_1 times the pixels', and its 91-term sum's; the penalty
    # 0.5 ||I - 0.5||^2 (|I - 0.5| <= 0.5) adds 0.5 n times the pixels' and its n-term sum's.
    w_c, n = np.abs(w[:, label]), image.size
    logit_atol = (w_c.sum() * image_atol
                  + float_tolerance.sum_atol(w_c.sum() + abs(b[label]), n + 1))
    np.testing.assert_allclose(got.target_logit[row], logits, rtol=0, atol=logit_atol)
    np.testing.assert_allclose(got.objective[row], objectives, rtol=0,
                               atol=logit_atol + 0.5 * n * image_atol
                               + float_tolerance.sum_atol(0.5 * 0.25 * n, n))


def test_matches_a_per_image_jax_grad_reference_on_a_random_cnn():
  """Definition on a non-linear model, from a given init: a few steps, as Adam's first steps
  follow the gradient's signs, which rounding can flip where the gradient is near zero."""
  clf = tiny_classifiers.random_cnn(jax.random.key(0))
  init = np.asarray(jax.random.uniform(jax.random.key(1), (2, 16, 16, 3), minval=0.2,
                                       maxval=0.8))
  labels = np.array([3, 1], np.int32)
  got = class_model(clf, labels, steps=4, learning_rate=0.05, l2=0.01, init=init)
  logit_and_grad = jax.jit(jax.value_and_grad(
      lambda x, label: clf.apply(clf.variables, x[None])[0, label]))
  for row, label in enumerate(labels):
    def value_and_grad(x, label=label):
      value, grad = logit_and_grad(jnp.asarray(x, jnp.float32), label)
      return float(value), np.asarray(grad)
    image, logits, objectives = reference(value_and_grad, init[row], 4, 0.05, 0.01)
    np.testing.assert_allclose(got.images[row], image, atol=1e-5)
    np.testing.assert_allclose(got.target_logit[row], logits, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got.objective[row], objectives, rtol=1e-5, atol=1e-5)


def test_linear_classifier_reaches_the_closed_form_optimum():
  """S_c = w_c . I + b_c: the objective is separable and concave, so the optimum over the
  box is I* = clip(0.5 + w_c / (2 l2), 0, 1) pixel by pixel (some clipped, some inside)."""
  clf = linear_classifier(8, 8, scale=0.8, seed=1)
  w = np.asarray(clf.variables["w"])
  labels = np.array([0, 1, 2], np.int32)
  l2 = 1.0
  got = class_model(clf, labels, image_size=8, steps=300, learning_rate=0.05, l2=l2)
  for row, label in enumerate(labels):
    optimum = np.clip(0.5 + w[:, label] / (2 * l2), 0.0, 1.0).reshape(8, 8, 3)
    assert 0.1 < np.mean((optimum == 0) | (optimum == 1)) < 0.5  # both kinds of pixels
    np.testing.assert_allclose(got.images[row], optimum, atol=2e-3)
    assert np.asarray(clf.apply(clf.variables, got.images[row][None]))[0].argmax() == label
    on_faces = (optimum == 0) | (optimum == 1)
    np.testing.assert_array_equal(np.asarray(got.images[row])[on_faces], optimum[on_faces])


def test_region_classifier_changes_only_its_region():
  """Pixels outside the region do not reach the logits, so from grey they stay exactly
  grey; class 0 rises with the region's brightness (it brightens), class 1 falls (darkens)."""
  region = (8, 20, 4, 16)
  clf = tiny_classifiers.region_classifier(32, 32, region)
  got = np.asarray(class_model(clf, np.array([0, 1], np.int32), image_size=32, steps=30,
                               learning_rate=0.05, l2=0.01).images)
  y0, y1, x0, x1 = region
  inside = np.zeros((32, 32), bool)
  inside[y0:y1, x0:x1] = True
  assert (got[:, ~inside] == 0.5).all()
  assert got[0][inside].mean() > 0.7 and got[1][inside].mean() < 0.3


def near_grey(batch: int) -> np.ndarray:
  """Grey plus a little noise: the random CNN has no biases, so exact grey is a saddle."""
  noise = jax.random.uniform(jax.random.key(5), (32, 32, 3), minval=-0.05, maxval=0.05)
  return np.broadcast_to(np.asarray(0.5 + noise), (batch, 32, 32, 3))


@pytest.fixture(scope="module")
def cnn_models():
  """(classifier, labels, result) of STEPS steps on the random CNN at 32 px from near grey."""
  clf = tiny_classifiers.random_cnn(jax.random.key(2))
  labels = np.array([0, 3, 1, 0], np.int32)
  return clf, labels, class_model(clf, labels, steps=STEPS, learning_rate=0.05, l2=0.01,
                                  init=near_grey(4))


def test_target_logit_rises_on_a_random_cnn(cnn_models):
  """The ascent raises the target logit, above what the other classes' models give it (a
  random CNN shares its features between classes, so a class model need not beat the other
  logits outright: the linear test checks that)."""
  clf, labels, got = cnn_models
  logits = np.asarray(clf.apply(clf.variables, got.images))
  rows = np.arange(len(labels))
  # The jitted loop rounds the CNN's float32 sums otherwise (3 layers, fan-in <= 64 pooled
  # positions): ~sqrt(layers * fan-in) eps of the logits' scale.
  cnn_rtol = math.sqrt(3 * 64) * float_tolerance.EPS
  np.testing.assert_allclose(got.target_logit[:, -1], logits[rows, labels], rtol=0,
                             atol=cnn_rtol * np.abs(logits).max())  # the returned images'
  start = np.asarray(clf.apply(clf.variables, near_grey(1)))[0]
  np.testing.assert_allclose(got.target_logit[:, 0], start[labels], rtol=0,
                             atol=cnn_rtol * np.abs(start).max())
  trace = np.asarray(got.target_logit)
  assert (trace[:, -1] > trace[:, 0] + 1.5).all()
  for row, label in enumerate(labels):  # class c's model scores c above other classes' models
    assert (logits[row, label] > logits[labels != label, label]).all()
  objective = np.asarray(got.objective)
  assert (np.diff(objective, axis=1) >= -1e-3).mean() > 0.9  # ascent, nearly monotonic
  images = np.asarray(got.images)
  assert images.min() >= 0.0 and images.max() <= 1.0


def test_each_class_model_is_independent_of_the_batch_and_chunk(cnn_models):
  clf, labels, got = cnn_models
  np.testing.assert_array_equal(got.images[0], got.images[3])  # the same label twice
  # Other batch sizes compile other programs; Adam divides by |gradient|, so their rounding
  # may move a pixel by more than eps: 1e-5 of the pixel range over the 20 steps.
  chunked = class_model(clf, labels, steps=STEPS, learning_rate=0.05, l2=0.01,
                        init=near_grey(4), chunk=3)  # a chunk of 3, then the rest
  np.testing.assert_allclose(chunked.images, got.images, atol=1e-5)
  np.testing.assert_allclose(chunked.objective, got.objective, rtol=1e-5, atol=1e-5)
  for row in (1, 2):
    alone = class_model(clf, labels[row:row + 1], steps=STEPS, learning_rate=0.05, l2=0.01,
                        init=near_grey(1))
    np.testing.assert_allclose(alone.images[0], got.images[row], atol=1e-5)
    np.testing.assert_allclose(alone.target_logit[0], got.target_logit[row], rtol=1e-5,
                               atol=1e-5)


def test_under_jit_and_without_recompilation(cnn_models):
  clf, labels, got = cnn_models
  jitted = jax.jit(lambda c, y, x: class_model(c, y, steps=STEPS, learning_rate=0.05, l2=0.01,
                                               init=x))
  np.testing.assert_allclose(jitted(clf, jnp.asarray(labels), near_grey(4)).images, got.images,
                             atol=1e-6)
  compiled = _class_model._cache_size()
  other = class_model(clf, np.array([2, 2, 1, 0], np.int32), steps=STEPS, learning_rate=0.02,
                      l2=0.1, init=near_grey(4))
  assert _class_model._cache_size() == compiled  # new labels and numbers
  assert not np.allclose(other.images[3], got.images[3])  # learning_rate and l2 took effect


def init_of(shape, value=0.5, dtype=np.float32):
  return np.full(shape, value, dtype)


@pytest.mark.parametrize("kwargs,error,message", [
    ({"labels": np.array([0, 4], np.int32)}, ValueError,
     r"labels must be class indices in \[0, 4\), got \[4\]"),
    ({"labels": np.array([-1], np.int32)}, ValueError, r"labels must be class indices"),
    ({"labels": np.array([0.0])}, TypeError, "labels must be integer class indices"),
    ({"labels": np.zeros((1, 1), np.int32)}, ValueError, r"labels must have shape \[B\]"),
    ({"labels": np.zeros(0, np.int32)}, ValueError, r"labels must have shape \[B\] with B >= 1"),
    ({"labels": [0, 1]}, TypeError, "labels must be an integer array"),
    ({"clf": "model"}, TypeError, "clf must be a salijax.Classifier"),
    ({"steps": 0}, ValueError, "steps must be a positive integer"),
    ({"steps": 2.5}, ValueError, "steps must be a positive integer"),
    ({"chunk": 0}, ValueError, "chunk must be a positive integer"),
    ({"learning_rate": 0.0}, ValueError, "learning_rate must be a finite number > 0"),
    ({"learning_rate": float("nan")}, ValueError, "learning_rate must be a finite number"),
    ({"l2": -1.0}, ValueError, "l2 must be a finite number >= 0"),
    ({"l2": "0.1"}, ValueError, "l2 must be a finite number"),
    ({"image_size": None}, TypeError, "image_size must be an int or a pair"),
    ({"image_size": (16, 16, 3)}, TypeError, "image_size must be an int or a pair"),
    ({"image_size": 0}, ValueError, "image_size must be positive"),
    ({"init": init_of((2, 16, 16, 3), 1.5)}, ValueError, "init must be in pixel space"),
    ({"init": init_of((3, 16, 16, 3))}, ValueError, "init must hold one image per label"),
    ({"init": init_of((2, 16, 16))}, ValueError, r"init must have shape \[B, H, W, 3\]"),
    ({"init": init_of((2, 8, 8, 3))}, ValueError,
     r"init has images of \(8, 8\) pixels, but image_size is \(16, 16\)"),
    ({"init": init_of((2, 16, 16, 3), 1, np.int32)}, TypeError, "init must be floating point"),
])
def test_bad_arguments(kwargs, error, message):
  arguments = {"clf": tiny_classifiers.random_cnn(jax.random.key(0)),
               "labels": np.array([0, 1], np.int32), "image_size": 16, "steps": 2,
               "learning_rate": 0.05, "l2": 0.01, "init": None}
  arguments.update(kwargs)
  clf, labels = arguments.pop("clf"), arguments.pop("labels")
  with pytest.raises(error, match=message):
    class_model(clf, labels, **arguments)
