"""Tests of salijax.metrics.completeness: a float64 reference, known answers, Quantus 0.6.0."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import twin_cnn
from float_tolerance import sum_atol

from salijax import methods
from salijax.classifier import Classifier
from salijax.metrics.completeness import Completeness, completeness

B, H, W = 3, 16, 16
LOGIT_ATOL = 5e-6  # the twins' logits agree to ~5e-7; a difference of two, with margin


@pytest.fixture(scope="module")
def setup():
  params = twin_cnn.weights(0)
  clf = twin_cnn.classifier(params)
  images = np.random.default_rng(0).uniform(0.1, 0.9, (B, H, W, 3)).astype(np.float32)
  maps = np.random.default_rng(1).normal(0, 0.01, (B, H, W)).astype(np.float32)
  return params, clf, images, maps


def reference(clf, images, maps, labels, baseline, rtol, atol):
  """One image at a time: the logits of I and of the baseline, sums in float64."""
  rows = []
  for image, saliency, label in zip(images, maps, labels, strict=True):
    start = {"black": np.zeros_like(image), "min": np.full_like(image, image.min()),
             "mean": np.full_like(image, image.mean()),
             "max": np.full_like(image, image.max())}[baseline]
    logits = np.asarray(clf.logits(jnp.asarray(np.stack([image, start]))), np.float64)
    difference = logits[0, label] - logits[1, label]
    total = float(np.sum(saliency, dtype=np.float64))
    gap = total - difference
    rows.append((total, difference, gap, abs(gap) / abs(difference),
                 abs(gap) <= atol + rtol * abs(difference)))
  return [np.array(column) for column in zip(*rows, strict=True)]


@pytest.mark.parametrize("baseline", ["black", "min", "mean", "max"])
def test_matches_the_reference(setup, baseline):
  _, clf, images, maps = setup
  labels = np.array([0, 3, 1], np.int32)
  got = completeness(clf, images, maps, labels, baseline=baseline, rtol=0.5)
  assert isinstance(got, Completeness)
  want = reference(clf, images, maps, labels, baseline, 0.5, 0.0)
  atol_sum = sum_atol(np.abs(maps).reshape(B, -1).sum(1), H * W)
  np.testing.assert_allclose(got.attribution_sum, want[0], rtol=0, atol=atol_sum)
  np.testing.assert_allclose(got.output_difference, want[1], rtol=0, atol=LOGIT_ATOL)
  np.testing.assert_allclose(got.gap, want[2], rtol=0, atol=atol_sum + LOGIT_ATOL)
  np.testing.assert_allclose(got.relative_gap, want[3], rtol=1e-4)
  np.testing.assert_array_equal(got.complete, want[4])
  assert got.complete.dtype == jnp.bool_ and got.gap.dtype == jnp.float32


def linear_classifier(weights: np.ndarray) -> Classifier:
  """logits_k = sum_{h,w,c} weights[k,h,w,c] x[h,w,c] + k: gradient x input is exact."""
  variables = {"w": jnp.asarray(weights), "b": jnp.arange(weights.shape[0], dtype=jnp.float32)}

  def apply(v, images):
    return jnp.einsum("bhwc,khwc->bk", images, v["w"],
                      precision=jax.lax.Precision.HIGHEST) + v["b"]

  return Classifier(variables=variables, apply=apply)


def test_known_answers(setup):
  """Gradient x input of a linear model is complete against black; integrated gradients of
  the twin CNN against any baseline within 5 % (the paper's rule); a zero map is not."""
  _, clf, images, _ = setup
  weights = np.random.default_rng(2).normal(size=(4, H, W, 3)).astype(np.float32)
  linear = linear_classifier(weights)
  labels = np.array([2, 0, 3], np.int32)
  exact = (weights[labels] * images).sum(-1)
  got = completeness(linear, images, exact, labels, rtol=0, atol=1e-4)
  assert got.complete.all()
  assert float(np.abs(got.gap).max()) < 1e-4
  ig = methods.integrated_gradients(clf, images, labels, reduce="sum", steps=64,
                                    rule="midpoint", baseline=0.0)
  result = completeness(clf, images, ig, labels)
  assert result.complete.all(), result.relative_gap
  zero = completeness(clf, images, jnp.zeros((B, H, W)), labels)
  assert not zero.complete.any()
  np.testing.assert_allclose(zero.gap, -zero.output_difference, rtol=0, atol=0)
  np.testing.assert_array_equal(zero.relative_gap, np.ones(B))
  # The same baseline as an array and as a name.
  gray = completeness(clf, images, ig, labels, baseline=0.5)
  as_array = completeness(clf, images, ig, labels, baseline=np.full_like(images, 0.5))
  np.testing.assert_array_equal(gray.gap, as_array.gap)


def test_softmax_and_labels_none(setup):
  _, clf, images, maps = setup
  predicted = np.asarray(jnp.argmax(clf.logits(jnp.asarray(images)), -1), np.int32)
  got = completeness(clf, images, maps, score="softmax")
  want = completeness(clf, images, maps, predicted, score="softmax")
  np.testing.assert_array_equal(got.gap, want.gap)
  assert float(jnp.abs(got.output_difference).max()) <= 1.0


def test_under_jit(setup):
  _, clf, images, maps = setup
  labels = jnp.array([0, 1, 2], jnp.int32)
  eager = completeness(clf, images, maps, labels, baseline="mean")
  jitted = jax.jit(lambda x, m: completeness(clf, x, m, labels, baseline="mean"))(images, maps)
  for a, b in zip(eager, jitted, strict=True):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("change, error, pattern", [
    ({"baseline": "sepia"}, ValueError, "baseline must be one of"),
    ({"baseline": 1.5}, ValueError, r"baseline must be .*a value in \[0, 1\]"),
    ({"baseline": np.zeros((B, H, W), np.float32)}, ValueError, "baseline must have the"),
    ({"baseline": np.full((B, H, W, 3), 2.0, np.float32)}, ValueError, "baseline must be in"),
    ({"baseline": None}, TypeError, "baseline must be a name"),
    ({"score": "probability"}, ValueError, "score"),
    ({"rtol": -0.1}, ValueError, "rtol"),
    ({"atol": float("nan")}, ValueError, "atol"),
    ({"maps": np.zeros((B, H, W + 1), np.float32)}, ValueError, "maps must have shape"),
    ({"maps": np.full((B, H, W), np.nan, np.float32)}, ValueError, "finite"),
    ({"labels": np.array([0, 1, 9], np.int32)}, ValueError, "labels"),
])
def test_bad_inputs_are_rejected(setup, change, error, pattern):
  _, clf, images, maps = setup
  arguments = {"maps": maps, "labels": None} | change
  maps, labels = arguments.pop("maps"), arguments.pop("labels")
  with pytest.raises(error, match=pattern):
    completeness(clf, images, maps, labels, **arguments)


def test_equal_to_quantus(setup, quantus, torch):
  """Quantus's output difference (read through its output_func) and attribution sum equal
  ours with baseline "min" (its "black"): with a map of every channel it replaces the whole
  image, with a one-channel map only the first colour channel (the module doc)."""
  params, clf, images, _ = setup
  labels = np.array([1, 4, 2], np.int32)
  attributions = np.asarray(methods.integrated_gradients(
      clf, images, labels, reduce="none", steps=16), np.float32)  # f32[B,H,W,3]
  model = twin_cnn.torch_model(torch, params)
  x_batch = images.transpose(0, 3, 1, 2).copy()

  def run(a_batch):
    seen = []

    def record(difference):
      seen.append(np.asarray(difference, np.float64))
      return difference

    metric = quantus.Completeness(normalise=False, abs=False, perturb_baseline="black",
                                  output_func=record, disable_warnings=True,
                                  display_progressbar=False)
    with warnings.catch_warnings():
      warnings.simplefilter("ignore")
      equal = metric(model=model, x_batch=x_batch, y_batch=labels, a_batch=a_batch,
                     device="cpu", batch_size=B, channel_first=True)
    return np.asarray(equal), np.concatenate(seen)

  maps = attributions.sum(-1)
  every_channel, difference = run(attributions.transpose(0, 3, 1, 2).copy())
  ours = completeness(clf, images, maps, labels, baseline="min", rtol=0, atol=0)
  np.testing.assert_allclose(ours.output_difference, difference, rtol=0, atol=LOGIT_ATOL)
  np.testing.assert_array_equal(ours.complete, every_channel)  # exact equality: both False
  sums = attributions.reshape(B, -1).sum(1, dtype=np.float64)
  np.testing.assert_allclose(ours.attribution_sum, sums, rtol=0,
                             atol=sum_atol(np.abs(attributions).reshape(B, -1).sum(1),
                                           3 * H * W))
  one_channel, difference = run(maps[:, None].copy())
  assert not one_channel.any()
  red_only = images.copy()
  red_only[..., 0] = images.min(axis=(1, 2, 3))[:, None, None]
  ours = completeness(clf, images, maps, labels, baseline=red_only)
  np.testing.assert_allclose(ours.output_difference, difference, rtol=0, atol=LOGIT_ATOL)
