"""Tests of salijax.methods.blur_ig: PAIR's BlurIG on the same model, known answers."""

import float_tolerance
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.ndimage
import tiny_classifiers

from salijax import methods
from salijax.methods.blur_ig import blur_ig, blur_levels, blur_taps
from salijax.methods.input_gradients import logit_gradients

REGION = (8, 24, 8, 24)  # (y0, y1, x0, x1), on the classifiers' 4-pixel grid


@pytest.fixture(scope="module")
def pair_core(saliency_pair):
  """PAIR's saliency.core (BlurIG, GuidedIG, XRAI), with the `saliency_pair` fixture's skip."""
  del saliency_pair
  import saliency.core  # noqa: PLC0415 - present whenever saliency.metrics.pic is.
  return saliency.core


def call_model_function(clf, label, dtype=jnp.float32):
  """PAIR's call_model_function contract: INPUT_OUTPUT_GRADIENTS, d logit_label / d input
  (the input cast to `dtype`)."""
  from saliency.core import base  # noqa: PLC0415

  def call(x_batch, call_model_args=None, expected_keys=None):
    del call_model_args, expected_keys
    x_batch = jnp.asarray(x_batch, dtype)
    grads = logit_gradients(clf.apply, clf.variables, x_batch,
                            jnp.full(x_batch.shape[0], label, jnp.int32))
    return {base.INPUT_OUTPUT_GRADIENTS: np.asarray(grads)}

  return call


def test_the_taps_are_scipys_gaussian_filter():
  rng = np.random.default_rng(0)
  signal = rng.uniform(size=23)
  for sigma in (0.0, 0.01, 0.3, 1.7, 5.0, 40.0):
    taps = blur_taps(sigma, 22)
    matrix = taps[np.arange(23)[None, :] - np.arange(23)[:, None] + 22]
    expected = scipy.ndimage.gaussian_filter1d(signal, sigma, mode="constant") if sigma else signal
    np.testing.assert_allclose(matrix @ signal, expected, rtol=0, atol=1e-14)
  np.testing.assert_allclose(blur_levels(4.0, 4, False), [0, 1, 2, 3, 4])
  np.testing.assert_allclose(blur_levels(4.0, 4, True), np.sqrt([0, 1, 2, 3, 4]))


@pytest.mark.parametrize("options", [dict(steps=12, max_sigma=6.0),
                                     dict(steps=8, max_sigma=20.0, sqrt=True, grad_step=0.05)])
def test_equals_pairs_blur_ig_on_the_same_model(pair_core, options):
  """PAIR's BlurIG (batch_size=1: each step its own sigma difference) on float64 images,
  with salijax's gradients through call_model_function: equal within the rounding of the
  float32 blurs, gradients and sums."""
  clf = tiny_classifiers.random_cnn(jax.random.key(6), num_classes=4)
  images = tiny_classifiers.tinted_images(batch=2, size=16)
  labels = jnp.array([1, 3])
  ours = np.asarray(blur_ig(clf, images, labels, reduce="none", chunk=5, **options))
  steps, size = options["steps"], 16
  levels = blur_levels(options["max_sigma"], steps, options.get("sqrt", False))
  grad_step = options.get("grad_step", 0.01)
  for b in range(2):
    image = np.asarray(images[b], np.float64)
    call = call_model_function(clf, int(labels[b]))
    expected = pair_core.BlurIG().GetMask(
        image, call, max_sigma=options["max_sigma"], steps=steps, grad_step=grad_step,
        sqrt=options.get("sqrt", False), batch_size=1)
    # The magnitudes summed: |ds_i * dG/ds * gradient| over the steps.
    terms = np.zeros_like(image)
    for s, ds in zip(levels[:-1], np.diff(levels), strict=True):
      blurred = scipy.ndimage.gaussian_filter(image, [s, s, 0], mode="constant")
      ahead = scipy.ndimage.gaussian_filter(image, [s + grad_step] * 2 + [0], mode="constant")
      terms += np.abs(ds * (ahead - blurred) / grad_step * call(blurred[None])[
          "INPUT_OUTPUT_GRADIENTS"][0])
    n = tiny_classifiers.random_cnn_terms(size // 4, size // 4) + steps + 4 * size
    np.testing.assert_allclose(ours[b], expected, rtol=0,
                               atol=float_tolerance.sum_atol(terms.max(), n))
    assert np.abs(expected).max() > 100 * float_tolerance.sum_atol(terms.max(), n)


def test_region_classifier_mass_is_in_the_region_and_completeness_converges():
  """The region classifier's gradient is zero outside its region: so is the map. The sum of
  the attributions tends to y(I) - y(G(sigma_max)) as the steps grow."""
  clf = tiny_classifiers.region_classifier(32, 32, REGION)
  images = tiny_classifiers.tinted_images(batch=2, size=32)
  labels = jnp.array([0, 1])
  inside = np.zeros((32, 32), bool)
  inside[REGION[0]:REGION[1], REGION[2]:REGION[3]] = True
  maps = np.asarray(blur_ig(clf, images, labels, max_sigma=10.0, steps=20))
  assert (maps[:, ~inside] == 0).all()
  assert (maps[:, inside].max(axis=1) > 0).all()
  blurred = np.stack([scipy.ndimage.gaussian_filter(np.asarray(image, np.float64),
                                                    [10.0, 10.0, 0], mode="constant")
                      for image in images])
  logits, blurred_logits = clf.logits(images), clf.logits(jnp.asarray(blurred, jnp.float32))
  change = np.asarray(logits - blurred_logits)[np.arange(2), labels]
  errors = []
  for steps in (10, 80):
    total = np.asarray(blur_ig(clf, images, labels, max_sigma=10.0, steps=steps,
                               reduce="none")).sum(axis=(1, 2, 3))
    errors.append(np.abs(total - change))
  assert (errors[1] < errors[0] / 3).all()  # a left Riemann sum: O(1/m)
  assert (errors[1] < 0.05 * np.abs(change)).all()


def test_chunk_does_not_change_the_map_and_cost_counts_the_steps():
  clf = tiny_classifiers.random_cnn(jax.random.key(6), num_classes=4)
  images = tiny_classifiers.tinted_images(batch=2, size=16)
  labels = jnp.array([1, 3])
  maps = np.asarray(blur_ig(clf, images, labels, steps=7, chunk=3))
  one = np.asarray(blur_ig(clf, images, labels, steps=7, chunk=1))
  np.testing.assert_allclose(one, maps, rtol=0, atol=1e3 * float_tolerance.EPS * maps.max())
  info = methods.info("blur_ig")
  cost = info.cost(info.resolve({"steps": 7, "chunk": 3}), None)
  assert (cost.kind, cost.passes, cost.per_pass) == ("gradient", 7, 3)
  assert info.defaults() == {"max_sigma": 50.0, "steps": 100, "grad_step": 0.01, "sqrt": False,
                             "chunk": 10, "reduce": "max_abs"}
