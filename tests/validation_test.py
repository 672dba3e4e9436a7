"""Host-side input checks: each bad input names its argument."""

import float_tolerance
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from salijax import Classifier, validation


def _clf(num_classes=5):
  return Classifier(variables={"w": jnp.ones((3, num_classes))},
                    apply=lambda v, x: x.mean(axis=(1, 2)) @ v["w"])


def test_accepts_good_input_and_returns_class_count():
  images = jnp.full((2, 8, 8, 3), 0.5)
  assert validation.check_classifier_inputs(_clf(5), images, jnp.array([0, 4])) == 5


@pytest.mark.parametrize("images, message", [
    (np.zeros((8, 8, 3), np.float32), "shape"),
    (np.zeros((1, 8, 8, 1), np.float32), "shape"),
    (np.zeros((0, 8, 8, 3), np.float32), "batch size 0"),
    (np.full((1, 8, 8, 3), 255.0, np.float32), "pixel space"),
    (np.full((1, 8, 8, 3), np.nan, np.float32), "non-finite"),
])
def test_bad_images_raise_value_error(images, message):
  with pytest.raises(ValueError, match=message):
    validation.check_images(images)


def test_integer_images_raise_type_error():
  with pytest.raises(TypeError, match="images must be floating"):
    validation.check_images(np.zeros((1, 8, 8, 3), np.uint8))


@pytest.mark.parametrize("labels, error, message", [
    (jnp.array([0, 5]), ValueError, r"\[0, 5\)"),
    (jnp.array([-1, 0]), ValueError, "class indices"),
    (jnp.array([0]), ValueError, "shape"),
    (jnp.array([0.0, 1.0]), TypeError, "integer"),
])
def test_bad_labels(labels, error, message):
  with pytest.raises(error, match=message):
    validation.check_classifier_inputs(_clf(5), jnp.zeros((2, 8, 8, 3)), labels)


def test_value_checks_skip_tracers_but_shapes_are_checked():
  clf = _clf(5)

  @jax.jit
  def run(images, labels):
    validation.check_classifier_inputs(clf, images, labels)
    return clf.logits(images)

  # Out-of-range values cannot be seen under jit; the call traces without error.
  assert run(jnp.full((2, 8, 8, 3), 2.0), jnp.array([0, 9])).shape == (2, 5)
  with pytest.raises(ValueError, match="shape"):
    run(jnp.zeros((2, 8, 8)), jnp.array([0, 1]))


@pytest.mark.parametrize("value", [0, -3, 2.5, True, None])
def test_positive_int(value):
  with pytest.raises(ValueError, match="num_masks"):
    validation.check_positive_int(value, "num_masks")


@pytest.mark.parametrize("value", [0.0, 1.5, -0.1, "0.5"])
def test_probability(value):
  with pytest.raises(ValueError, match="p must"):
    validation.check_probability(value, "p")


def test_key_checks():
  validation.check_key(jax.random.key(0))
  validation.check_key(jax.random.PRNGKey(0))
  with pytest.raises(TypeError, match="required"):
    validation.check_key(None)
  with pytest.raises(TypeError, match="single PRNG key"):
    validation.check_key(jax.random.split(jax.random.key(0), 2))


def _random_clf_and_images():
  """A linear Classifier of the mean colour, and flat images it puts in more than one class."""
  clf = Classifier(variables={"w": jax.random.normal(jax.random.key(0), (3, 5))},
                   apply=lambda v, x: (x.mean(axis=(1, 2)) - 0.5) @ v["w"])
  images = jnp.broadcast_to(jax.random.uniform(jax.random.key(1), (4, 1, 1, 3)), (4, 8, 8, 3))
  logits = np.asarray(clf.logits(images))
  assert len(set(np.argmax(logits, -1).tolist())) > 1
  # Top-two margins beyond float32's error (a 64-term mean of pixels in [0, 1], then a 3-term
  # dot with |x - 0.5| <= 0.5): every program, jitted or not, picks the same argmax.
  w = np.abs(np.asarray(clf.variables["w"])).sum(axis=0)
  atol = float_tolerance.sum_atol(0.5 * w, 3) + float_tolerance.sum_atol(1.0, 64) * w.max()
  top2 = np.sort(logits, axis=-1)[:, -2:]
  assert (top2[:, 1] - top2[:, 0] > 2 * atol).all()
  return clf, images


def test_labels_or_predicted():
  clf, images = _random_clf_and_images()
  given = jnp.array([0, 1, 2, 3])
  assert validation.labels_or_predicted(clf, images, given) is given
  predicted = validation.labels_or_predicted(clf, images, None)
  assert predicted.dtype == jnp.int32
  np.testing.assert_array_equal(predicted, jnp.argmax(clf.logits(images), -1))
  with pytest.raises(TypeError, match="clf must be a salijax.Classifier"):
    validation.labels_or_predicted(clf.apply, images, None)
  with pytest.raises(ValueError, match="pixel space"):
    validation.labels_or_predicted(clf, images + 1.0, None)


def test_labels_or_predicted_inside_a_callers_jit():
  clf, images = _random_clf_and_images()
  jitted = jax.jit(lambda x: validation.labels_or_predicted(clf, x, None))
  np.testing.assert_array_equal(jitted(images), jnp.argmax(clf.logits(images), -1))
  with pytest.raises(ValueError, match="shape"):
    jitted(jnp.zeros((2, 8, 8)))
