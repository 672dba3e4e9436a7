"""Tests of the method registry: every registered method, one call shape."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tiny_classifiers

from salijax import methods

# Registered name -> the function exported by salijax.methods.
EXPECTED_METHODS = {
    "ablation_cam": "ablation_cam", "eigencam": "eigencam", "fake_cam": "fake_cam",
    "gradcam": "gradcam", "gradcam_plus_plus": "gradcam_plus_plus", "gradient": "gradient",
    "guided_backprop": "guided_backprop", "guided_gradcam": "guided_gradcam", "iba": "iba",
    "integrated_gradients": "integrated_gradients",
    "layercam": "layercam", "lime": "lime", "mask_search": "mask_search", "random": "random_map",
    "rise": "rise", "score_cam": "score_cam", "sidu": "sidu",
    "sidu_feature_space": "sidu_feature_space", "smoothgrad": "smoothgrad",
    "xgradcam": "xgradcam"}


def test_names_lists_every_method():
  assert set(methods.names()) == set(EXPECTED_METHODS)
  assert list(methods.names()) == sorted(methods.names())
  for name, function in EXPECTED_METHODS.items():
    assert methods.get(name) is getattr(methods, function)


def test_unknown_name_lists_the_registered_ones():
  with pytest.raises(ValueError, match="gradcam") as error:
    methods.get("gradcam++-typo")
  assert "gradcam++-typo" in str(error.value)
  for name in methods.names():
    assert name in str(error.value)


def test_a_name_is_registered_once():
  with pytest.raises(ValueError, match="rise"):
    methods.register("rise")(lambda clf, images, labels, *, key=None: None)
  assert methods.get("rise") is methods.rise


@pytest.mark.parametrize("name", methods.names())
def test_every_method_takes_the_common_call_shape(name):
  """(clf, images, labels, key=...) with the reference defaults -> f32[B,H,W], finite."""
  clf = tiny_classifiers.random_cnn(jax.random.key(0), num_classes=4)
  images = jax.random.uniform(jax.random.key(1), (2, 32, 32, 3))
  labels = jnp.array([3, 0])
  maps = methods.get(name)(clf, images, labels, key=jax.random.key(2))
  assert maps.shape == (2, 32, 32) and maps.dtype == jnp.float32
  assert np.isfinite(np.asarray(maps)).all()


# Small hyperparameters of the slower methods, for the labels=None test.
SMALL = {"integrated_gradients": dict(steps=8), "iba": dict(steps=2, num_samples=2),
         "lime": dict(num_samples=32), "mask_search": dict(num_steps=20),
         "rise": dict(num_masks=32), "smoothgrad": dict(num_samples=4)}


@pytest.mark.parametrize("name", methods.names())
def test_labels_none_explains_the_predicted_class(name):
  """labels=None (or omitted) gives the maps of the argmax classes, bit for bit."""
  clf = tiny_classifiers.random_cnn(jax.random.key(6), num_classes=4)
  images = tiny_classifiers.tinted_images()
  predicted = jnp.argmax(clf.apply(clf.variables, images), -1)
  assert len(set(predicted.tolist())) > 1  # the images are not all of one class
  method = functools.partial(methods.get(name), key=jax.random.key(2), **SMALL.get(name, {}))
  expected = method(clf, images, predicted)
  np.testing.assert_array_equal(method(clf, images, None), expected)
  np.testing.assert_array_equal(method(clf, images), expected)
