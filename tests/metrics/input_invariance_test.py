"""Tests of salijax.metrics.input_invariance: known answers (the paper's), a bias-compensated
twin, and Quantus 0.6.0's InputInvariance with its own shifted torch model."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import twin_cnn

from salijax import methods
from salijax.metrics.input_invariance import (
    InputInvariance,
    input_invariance,
    shifted_classifier,
)

pytestmark = pytest.mark.xdist_group("input_invariance")

B, H, W = 2, 16, 16
SHIFT = -1.0


@pytest.fixture(scope="module")
def twin():
  params = twin_cnn.weights(4)
  images = np.random.default_rng(5).uniform(size=(B, H, W, 3)).astype(np.float32)
  return params, twin_cnn.classifier(params), images


@jax.jit
def unchecked(clf, images, labels):
  """salijax's gradient traced, so images outside [0, 1] pass (as in the metric)."""
  return methods.gradient(clf, images, labels)


def test_known_answers(twin):
  """The gradient is input invariant, integrated gradients from a black baseline is not
  (Kindermans et al.); the default shifted model compensates exactly (logits to rounding)."""
  _, clf, images = twin
  labels = jnp.array([0, 2], jnp.int32)
  key = jax.random.key(0)
  gradient = input_invariance(methods.gradient, clf, images, labels, key=key)
  assert isinstance(gradient, InputInvariance)
  assert gradient.invariant.dtype == jnp.bool_ and gradient.invariant.all()
  assert float(gradient.logit_difference.max()) < 1e-5
  ig = input_invariance("integrated_gradients", clf, images, labels, key=key,
                        method_options={"steps": 8, "reduce": "sum"})
  assert not ig.invariant.any()
  assert float(ig.difference.min()) > 1e-2
  moved = shifted_classifier(clf, 0.25)
  np.testing.assert_allclose(moved.logits(jnp.asarray(images) + 0.25),
                             clf.logits(jnp.asarray(images)), rtol=0, atol=1e-5)
  np.testing.assert_allclose(moved.head(moved.variables, moved.features(
      moved.variables, images + 0.25), images + 0.25), clf.logits(images), rtol=0, atol=1e-5)


def compensated(params, shift):
  """The paper's shifted model: conv1's bias b - m sum(W) absorbs the shift (exact except where
  the 3x3 window overlaps the zero padding)."""
  moved = dict(params)
  moved["conv1.bias"] = params["conv1.bias"] - shift * params["conv1.weight"].sum(axis=(1, 2, 3))
  return twin_cnn.classifier(moved)


def test_matches_the_maps_of_both_models(twin):
  """difference, invariant and logit_difference from the two models' maps and logits, with a
  bias-compensated twin as shifted_clf (inexact at the border: the maps differ there)."""
  params, clf, images = twin
  labels = jnp.array([1, 3], jnp.int32)
  shifted = compensated(params, SHIFT)
  got = input_invariance(methods.gradient, clf, images, labels, key=jax.random.key(1),
                         shifted_clf=shifted, atol=1e-3)
  a = np.asarray(unchecked(clf, jnp.asarray(images), labels), np.float64)
  b = np.asarray(unchecked(shifted, jnp.asarray(images + SHIFT), labels), np.float64)
  want = np.abs(a - b).reshape(B, -1).max(1)
  np.testing.assert_allclose(got.difference, want, rtol=1e-6, atol=1e-9)
  np.testing.assert_array_equal(got.invariant, np.isclose(b, a, atol=1e-3, rtol=1e-5)
                                .reshape(B, -1).all(1))
  logits = np.abs(np.asarray(shifted.logits(jnp.asarray(images + SHIFT)))
                  - np.asarray(clf.logits(jnp.asarray(images)))).max(1)
  # Two programs (jitted and eager) round the logits (|logit| < 20 here) differently: a few
  # float32 ulps of 20 (2e-6 each) on either side.
  assert float(np.abs(np.asarray(clf.logits(jnp.asarray(images)))).max()) < 20
  np.testing.assert_allclose(got.logit_difference, logits, rtol=0, atol=1e-5)
  assert float(got.logit_difference.min()) > 1e-4  # the border is not compensated
  interior = np.abs(a - b)[:, 2:-2, 2:-2]
  assert float(np.abs(a - b).max()) > float(interior.max())


def test_under_jit(twin):
  _, clf, images = twin
  labels = jnp.array([0, 1], jnp.int32)
  eager = input_invariance(methods.gradient, clf, images, labels, key=jax.random.key(2))
  jitted = jax.jit(lambda x, k: input_invariance(methods.gradient, clf, x, labels, key=k))(
      images, jax.random.key(2))
  np.testing.assert_array_equal(eager.invariant, jitted.invariant)
  np.testing.assert_allclose(eager.difference, jitted.difference, rtol=0, atol=1e-6)


@pytest.mark.parametrize("change, error, pattern", [
    ({"shift": float("nan")}, ValueError, "shift"),
    ({"shift": "one"}, ValueError, "shift"),
    ({"shifted_clf": "model"}, TypeError, "shifted_clf"),
    ({"atol": -1.0}, ValueError, "atol"),
    ({"key": None}, TypeError, "key"),
    ({"method": None}, TypeError, "method"),
    ({"method": lambda clf, x, y, key: jnp.zeros(x.shape[:2])}, ValueError, "maps returned"),
])
def test_bad_inputs_are_rejected(twin, change, error, pattern):
  _, clf, images = twin
  arguments = {"method": methods.gradient, "key": jax.random.key(0)} | change
  method = arguments.pop("method")
  with pytest.raises(error, match=pattern):
    input_invariance(method, clf, images, **arguments)


def test_equal_to_quantus(twin, quantus, torch):
  """Quantus's InputInvariance (input_shift -1, its shifted torch model from
  add_mean_shift_to_first_layer, explain_func = salijax's gradient or integrated gradients on
  the JAX twin of the torch model it is given) = invariant with shifted_clf = the JAX twin of
  that torch model; its a_shifted (recorded) gives our difference to float32 rounding."""
  from quantus.helpers.model.pytorch_model import PyTorchModel  # noqa: PLC0415
  params, clf, images = twin
  labels = np.array([2, 4], np.int32)
  model = twin_cnn.torch_model(torch, params)
  shifted_torch = PyTorchModel(model, channel_first=True).add_mean_shift_to_first_layer(
      SHIFT, (1, 3, H, W))
  shifted = twin_cnn.classifier({k: v.detach().numpy() for k, v in
                                 shifted_torch.state_dict().items()})

  for name, options in (("gradient", {}), ("integrated_gradients", {"steps": 8,
                                                                    "reduce": "sum"})):
    method = jax.jit(lambda m, x, y, name=name, options=options: methods.get(name)(
        m, x, y, **options))
    seen = []

    def explain_func(model, inputs, targets, method=method, seen=seen, **_):
      state = {k: v.detach().numpy() for k, v in model.state_dict().items()}
      x = jnp.asarray(np.asarray(inputs, np.float32).transpose(0, 2, 3, 1))
      maps = np.asarray(method(twin_cnn.classifier(state), x, jnp.asarray(targets, jnp.int32)))
      seen.append(maps)
      return maps

    a_batch = np.asarray(method(clf, jnp.asarray(images), jnp.asarray(labels)))
    metric = quantus.InputInvariance(input_shift=SHIFT, normalise=False, abs=False,
                                     disable_warnings=True, display_progressbar=False)
    with warnings.catch_warnings():
      warnings.simplefilter("ignore")
      want = metric(model=model, x_batch=images.transpose(0, 3, 1, 2).copy(), y_batch=labels,
                    a_batch=a_batch[:, None].copy(), explain_func=explain_func, device="cpu",
                    batch_size=B, channel_first=True)
    got = input_invariance(name, clf, images, labels, key=jax.random.key(0),
                           shifted_clf=shifted, method_options=options)
    np.testing.assert_array_equal(got.invariant, np.asarray(want), err_msg=name)
    difference = np.abs(a_batch - seen[-1]).reshape(B, -1).max(1)
    np.testing.assert_allclose(got.difference, difference, rtol=1e-5, atol=1e-6, err_msg=name)
