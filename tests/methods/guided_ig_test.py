"""Tests of salijax.methods.guided_ig: PAIR's GuidedIG on the same model, known answers."""

import importlib

import float_tolerance
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tiny_classifiers
from blur_ig_test import call_model_function, pair_core  # noqa: F401 (a fixture)

from experiments import anchor_speed
from salijax import methods
from salijax.methods.guided_ig import guided_ig
from salijax.methods.integrated_gradients import integrated_gradients

guided_ig_module = importlib.import_module("salijax.methods.guided_ig")
REGION = (8, 24, 8, 24)  # (y0, y1, x0, x1), on the classifiers' 4-pixel grid


@pytest.fixture
def pair_guided_ig(pair_core, monkeypatch):  # noqa: F811
  import saliency.core.guided_ig as module  # noqa: PLC0415

  monkeypatch.setattr(module, "np", anchor_speed.NumpyQuantileInterpolation())
  return pair_core.GuidedIG()


def _attribution_scale(clf, images, labels):
  """max |dy/dx| * |I - B|_inf summed over the path (an upper bound of |A| per feature)."""
  grads = jax.grad(lambda x: clf.logits(x)[jnp.arange(len(labels)), labels].sum())(images)
  return float(jnp.abs(grads).max() * jnp.abs(images).max())


@pytest.mark.parametrize("options", [dict(steps=40), dict(steps=20, fraction=0.1, max_dist=0.1)])
def test_equals_pairs_guided_ig_on_the_same_model(pair_guided_ig, options):
  """PAIR runs the path in float64, salijax in float32; the gradients are the same model's.
  With a bounded max_dist the paths stay within rounding of each other (an unbounded path,
  max_dist=1, can select other features after a near tie of |g| and diverge)."""
  clf = tiny_classifiers.random_cnn(jax.random.key(6), num_classes=4)
  images = tiny_classifiers.tinted_images(batch=2, size=16)
  labels = jnp.array([1, 3])
  ours = np.asarray(guided_ig(clf, images, labels, reduce="none", **options))
  for b in range(2):
    expected = pair_guided_ig.GetMask(
        np.asarray(images[b], np.float32), call_model_function(clf, int(labels[b])),
        x_steps=options["steps"], fraction=options.get("fraction", 0.25),
        max_dist=options.get("max_dist", 0.02))
    n = tiny_classifiers.random_cnn_terms(4, 4) + 16 * 16 * 3 + options["steps"]
    atol = float_tolerance.sum_atol(_attribution_scale(clf, images[b:b + 1], labels[b:b + 1]),
                                    n)
    np.testing.assert_allclose(ours[b], expected, rtol=0, atol=atol)
    assert np.abs(expected).max() > 100 * atol


def test_equals_pair_in_float64_even_unbounded(pair_guided_ig, monkeypatch):
  """In float64 (jax x64, PAIR's L1 tolerance 1e-9) the algorithm is PAIR's step for step,
  also with max_dist=1 where float32 rounding may pick other features."""
  monkeypatch.setattr(guided_ig_module, "_L1_TOLERANCE", 1e-10)
  with jax.enable_x64(True):
    clf = tiny_classifiers.random_cnn(jax.random.key(6), num_classes=4)
    clf = clf.replace(variables=jax.tree.map(lambda v: jnp.asarray(v, jnp.float64),
                                             clf.variables))
    images = jnp.asarray(tiny_classifiers.tinted_images(batch=2, size=16), jnp.float64)
    labels = jnp.array([1, 3])
    ours = np.asarray(guided_ig_module._guided_ig(
        clf, images, labels, jnp.zeros_like(images), steps=20, fraction=0.25, max_dist=1.0,
        reduce="none"))
    assert ours.dtype == np.float64
    for b in range(2):
      expected = pair_guided_ig.GetMask(np.asarray(images[b]), call_model_function(
          clf, int(labels[b]), dtype=jnp.float64), x_steps=20, max_dist=1.0)
      np.testing.assert_allclose(ours[b], expected, rtol=0,
                                 atol=1e-12 * np.abs(expected).max())


def test_max_dist_zero_is_integrated_gradients_left_sum():
  """max_dist = 0 keeps every feature on the straight line: the left Riemann sum of IG."""
  clf = tiny_classifiers.random_cnn(jax.random.key(6), num_classes=4)
  images = tiny_classifiers.tinted_images(batch=2, size=16)
  labels = jnp.array([1, 3])
  ours = guided_ig(clf, images, labels, steps=16, max_dist=0.0, reduce="none")
  expected = integrated_gradients(clf, images, labels, steps=16, rule="left", reduce="none")
  n = tiny_classifiers.random_cnn_terms(4, 4) + 16 * 16 * 3 + 16
  np.testing.assert_allclose(ours, expected, rtol=0, atol=float_tolerance.sum_atol(
      _attribution_scale(clf, images, labels), n))


def test_region_classifier_mass_is_in_the_region_and_completeness():
  clf = tiny_classifiers.region_classifier(32, 32, REGION)
  images = tiny_classifiers.tinted_images(batch=2, size=32)
  labels = jnp.array([0, 1])
  inside = np.zeros((32, 32), bool)
  inside[REGION[0]:REGION[1], REGION[2]:REGION[3]] = True
  attributions = np.asarray(guided_ig(clf, images, labels, steps=100, reduce="none"))
  maps = np.abs(attributions).max(axis=-1)
  assert (maps[:, ~inside] == 0).all()
  assert (maps[:, inside].max(axis=1) > 0).all()
  change = np.asarray(clf.logits(images) - clf.logits(jnp.zeros_like(images)))[
      np.arange(2), labels]
  np.testing.assert_allclose(attributions.sum(axis=(1, 2, 3)), change, rtol=0.02)
  # An image equal to its baseline gets nothing.
  assert (np.asarray(guided_ig(clf, images, labels, baseline=images, steps=5)) == 0).all()


def test_options_and_cost():
  info = methods.info("guided_ig")
  assert info.defaults() == {"baseline": 0.0, "steps": 200, "fraction": 0.25, "max_dist": 0.02,
                             "reduce": "max_abs"}
  cost = info.cost(info.resolve({"steps": 7}), None)
  assert (cost.kind, cost.passes, cost.per_pass) == ("gradient", 7, 1)
  clf = tiny_classifiers.random_cnn(jax.random.key(6), num_classes=4)
  with pytest.raises(ValueError, match="baseline"):
    guided_ig(clf, tiny_classifiers.tinted_images(batch=1, size=16), baseline=2.0)
