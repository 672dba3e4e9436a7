"""Tests of salijax.perturbations.fgsm."""

import math

import float_tolerance
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tiny_classifiers

from salijax.classifier import Classifier
from salijax.perturbations import fgsm

SIZE = 16


def linear_classifier(num_classes: int = 3, seed: int = 0) -> Classifier:
  """logits = flatten(I) W + b: the gradient of the cross-entropy is W (softmax - onehot)."""
  rng = np.random.default_rng(seed)
  variables = {"w": jnp.asarray(0.05 * rng.normal(size=(SIZE * SIZE * 3, num_classes)),
                                  jnp.float32),
               "b": jnp.asarray(rng.normal(size=num_classes), jnp.float32)}

  def apply(v, images):
    return images.reshape(images.shape[0], -1) @ v["w"] + v["b"]

  return Classifier(variables=variables, apply=apply)


def cross_entropy(clf, images, labels):
  """f64[B], -log softmax(logits)[label], in numpy."""
  logits = np.asarray(clf.apply(clf.variables, jnp.asarray(images)), np.float64)
  shifted = logits - logits.max(axis=1, keepdims=True)
  log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
  return -log_p[np.arange(len(labels)), labels]


def images_and_labels(batch=4, low=0.0, high=1.0, seed=1):
  rng = np.random.default_rng(seed)
  images = rng.uniform(low, high, size=(batch, SIZE, SIZE, 3)).astype(np.float32)
  return images, rng.integers(0, 3, size=batch).astype(np.int32)


def per_image_gradients(clf, images, labels):
  """f32[B,H,W,3]: jax.grad of each image's own cross-entropy, one image at a time."""
  def loss(x, label):
    return -jax.nn.log_softmax(clf.apply(clf.variables, x[None])[0])[label]
  return np.stack([np.asarray(jax.grad(loss)(jnp.asarray(x), label))
                   for x, label in zip(images, labels, strict=True)])


def cnn_gradient_atol(gradients):
  """Per image: random_cnn's gradient in another program (batch, jit) rounds its float32 sums
  otherwise: 3 layers forward and back, fan-in <= 3*3*6: ~sqrt(6 * 54) eps of its scale."""
  scale = np.abs(gradients).reshape(len(gradients), -1).max(axis=1)
  return math.sqrt(6 * 54) * float_tolerance.EPS * scale[:, None, None, None]


def assert_steps(got, images, gradients, atol, epsilon):
  """got = clip(images + epsilon sign(gradients)) where |gradients| > atol; a smaller
  component's sign is rounding (the step there may go either way, or be 0)."""
  want = np.clip(images + epsilon * np.sign(gradients), 0.0, 1.0)
  sure = np.abs(gradients) > atol
  assert sure.mean() > 0.99  # nearly every step is checked
  np.testing.assert_allclose(got[sure], want[sure], atol=1e-6)
  assert (np.abs(got - images) <= epsilon + 1e-6).all()


def test_matches_the_sign_of_a_per_image_gradient():
  """Reference: jax.grad of one image's own cross-entropy, one image at a time."""
  clf = tiny_classifiers.random_cnn(jax.random.key(0), num_classes=3)
  images, labels = images_and_labels()
  epsilon = 0.05
  got = np.asarray(fgsm(clf, images, labels, epsilon=epsilon))
  gradients = per_image_gradients(clf, images, labels)
  assert_steps(got, images, gradients, cnn_gradient_atol(gradients), epsilon)


def test_linear_model_known_step_and_the_loss_rises():
  """On a linear model the step is sign(W (softmax - onehot)); without clipping the convex
  loss rises by at least epsilon times the gradient's L1 norm."""
  clf = linear_classifier()
  images, labels = images_and_labels(low=0.2, high=0.8)  # no clipping at epsilon 0.05
  epsilon = 0.05
  raw = np.asarray(clf.apply(clf.variables, jnp.asarray(images)), np.float64)
  probabilities = np.exp(raw - raw.max(axis=1, keepdims=True))
  probabilities /= probabilities.sum(axis=1, keepdims=True)
  residual = probabilities - np.eye(3)[labels]
  w = np.asarray(clf.variables["w"], np.float64)
  gradient = (residual @ w.T).reshape(images.shape)
  # float32's error: each logit's 769-term sum moves p_k by <= 2 p_k max|dlogit|, softmax
  # rounds it 4 times, and then the gradient's 3-term sums W (p - onehot).
  flat = images.reshape(len(images), -1).astype(np.float64)
  logit_atol = float_tolerance.sum_atol(
      np.abs(flat) @ np.abs(w) + np.abs(np.asarray(clf.variables["b"])), flat.shape[1] + 1)
  residual_atol = probabilities * (2 * logit_atol + 4 * float_tolerance.EPS)
  atol = ((residual_atol + 3 * float_tolerance.EPS * np.abs(residual)) @ np.abs(w).T)
  got = np.asarray(fgsm(clf, images, labels, epsilon=epsilon))
  assert_steps(got, images, gradient, atol.reshape(images.shape), epsilon)
  before = cross_entropy(clf, images, labels)
  after = cross_entropy(clf, got, labels)
  l1 = np.abs(gradient).reshape(len(images), -1).sum(axis=1)
  assert np.all(after >= before + epsilon * l1 * (1 - 1e-4))


def test_stays_in_the_unit_interval_and_within_epsilon():
  clf = tiny_classifiers.random_cnn(jax.random.key(1), num_classes=3)
  images, labels = images_and_labels(seed=2)
  images[0, :4] = 0.0
  images[1, :4] = 1.0
  got = np.asarray(fgsm(clf, images, labels, epsilon=0.3))
  assert got.min() >= 0.0 and got.max() <= 1.0
  assert np.abs(got - images).max() <= 0.3 + 1e-6
  np.testing.assert_array_equal(np.asarray(fgsm(clf, images, labels, epsilon=0.0)), images)


def test_batch_and_jit_invariance():
  clf = tiny_classifiers.random_cnn(jax.random.key(2), num_classes=3)
  images, labels = images_and_labels(batch=5, seed=3)
  whole = np.asarray(fgsm(clf, images, labels, epsilon=0.1))
  # Other batch sizes (and jit) compile other programs: near-zero gradients' signs may differ.
  gradients = per_image_gradients(clf, images, labels)
  atol = 2 * cnn_gradient_atol(gradients)  # two programs, each within the bound
  alone = np.concatenate([np.asarray(fgsm(clf, images[i:i + 1], labels[i:i + 1], epsilon=0.1))
                          for i in range(5)])
  assert_steps(alone, images, gradients, atol, 0.1)
  assert_steps(whole, images, gradients, atol, 0.1)
  jitted = jax.jit(lambda x, y: fgsm(clf, x, y, epsilon=0.1))(images, labels)
  assert_steps(np.asarray(jitted), images, gradients, atol, 0.1)


def test_labels_none_attacks_the_predicted_classes():
  clf = tiny_classifiers.random_cnn(jax.random.key(6), num_classes=4)
  images = tiny_classifiers.tinted_images(size=SIZE)
  predicted = jnp.argmax(clf.apply(clf.variables, images), -1)
  assert len(set(predicted.tolist())) > 1
  expected = fgsm(clf, images, predicted, epsilon=0.1)
  np.testing.assert_array_equal(fgsm(clf, images, None, epsilon=0.1), expected)
  np.testing.assert_array_equal(fgsm(clf, images, epsilon=0.1), expected)


@pytest.mark.parametrize("epsilon, error", [
    (-0.01, ValueError), (1.5, ValueError), (float("nan"), ValueError), ("0.1", TypeError),
    (True, TypeError), (None, TypeError),
])
def test_bad_epsilon_is_named(epsilon, error):
  clf = linear_classifier()
  images, labels = images_and_labels()
  with pytest.raises(error, match="epsilon"):
    fgsm(clf, images, labels, epsilon=epsilon)


def test_bad_images_and_labels_are_named():
  clf = linear_classifier()
  images, labels = images_and_labels()
  with pytest.raises(ValueError, match="labels"):
    fgsm(clf, images, np.array([0, 1, 2, 3], np.int32), epsilon=0.1)
  with pytest.raises(ValueError, match="images"):
    fgsm(clf, images * 2.0 + 0.5, labels, epsilon=0.1)
  with pytest.raises(TypeError, match="clf"):
    fgsm(None, images, labels, epsilon=0.1)
