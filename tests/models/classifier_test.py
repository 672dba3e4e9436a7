"""Tests of salijax.models.classifier."""

import functools
import math

import float_tolerance
import initialised_models
import jax
import numpy as np
import pytest

import salijax
from salijax import models


@functools.cache
def _model(head="linear"):
  module = models.create("resnet18", num_classes=initialised_models.NUM_CLASSES, head=head)
  variables = (initialised_models.variables("resnet18") if head == "linear"
               else models.init(module, jax.random.key(0), 32))
  return module, variables, jax.random.uniform(jax.random.key(1), (2, 32, 32, 3))


def _jit_atol(logits):
  """jit fuses and reorders the float32 sums of resnet18 (18 layers, fan-in <= 3*3*512):
  independent roundings, ~sqrt(layers * fan-in) eps of the logits' scale."""
  return math.sqrt(18 * 3 * 3 * 512) * float_tolerance.EPS * float(np.abs(logits).max())


def test_functions_are_the_models():
  module, variables, images = _model()
  clf = models.classifier(module, variables)
  assert isinstance(clf, salijax.Classifier)
  logits = module.apply(variables, images)
  np.testing.assert_array_equal(clf.apply(variables, images), logits)
  np.testing.assert_array_equal(clf.logits(images), logits)
  feats = clf.features(variables, images)
  np.testing.assert_array_equal(
      feats, initialised_models.flax_activation(module, variables, images, "layer4"))
  assert feats.shape == (2, 1, 1, 512)
  # Op by op (no jit), the head runs the model's own last ops on the same activation.
  np.testing.assert_array_equal(clf.head(variables, feats, images), logits)


def test_layer_choice():
  module, variables, images = _model()
  clf = models.classifier(module, variables, layer="layer3.1.bn2")
  np.testing.assert_array_equal(
      clf.features(variables, images),
      initialised_models.flax_activation(module, variables, images, "layer3.1.bn2"))
  with pytest.raises(ValueError, match="layer.*'layer9'"):
    models.classifier(module, variables, layer="layer9")


def test_vgg_default_layer_is_last_relu():
  module = models.create("vgg11")
  clf = models.classifier(module, {}, layer=None)
  assert clf.features.mapping.layer == "features_19" == clf.head.mapping.layer


def test_inference_mode_without_rngs():
  """Dropout of the mlp head is off: no rng needed, same output twice."""
  module, variables, images = _model(head="mlp")
  clf = models.classifier(module, variables)
  np.testing.assert_array_equal(clf.logits(images), clf.logits(images))
  np.testing.assert_array_equal(clf.logits(images), module.apply(variables, images))


def test_jit_takes_the_classifier_as_an_argument():
  module, variables, images = _model()
  other = jax.tree.map(lambda x: x * 1.5, variables)

  @jax.jit
  def logits_and_head(clf, x):
    return clf.apply(clf.variables, x), clf.head(clf.variables, clf.features(clf.variables, x), x)

  for v in (variables, other):
    logits, head = logits_and_head(models.classifier(module, v), images)
    eager = module.apply(v, images)
    np.testing.assert_allclose(logits, eager, rtol=0, atol=_jit_atol(eager))
    np.testing.assert_allclose(head, logits, rtol=0, atol=_jit_atol(eager))
  # Two classifiers of one model share the compiled program: weights are arguments.
  assert logits_and_head._cache_size() == 1
  apply = jax.jit(models.classifier(module, variables).apply)
  eager = module.apply(variables, images)
  np.testing.assert_allclose(apply(variables, images), eager, rtol=0, atol=_jit_atol(eager))
