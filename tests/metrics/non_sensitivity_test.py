"""Tests of salijax.metrics.non_sensitivity: a per-copy reference, known answers, Quantus 0.6.0."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tiny_classifiers
import twin_cnn

from salijax.metrics.non_sensitivity import NonSensitivity, non_sensitivity

pytestmark = pytest.mark.xdist_group("non_sensitivity")

B, H, W = 2, 16, 16
EPS = 3e-5  # of 1e-5 .. 1e-4, the one with no output change of these inputs near it
# The twins' logits agree to ~5e-7 (and two XLA programs' to less): no output change may lie
# within 4 times that of the threshold, or two sides could count it differently (checked on
# the inputs, not assumed).
MARGIN = 2e-6


@pytest.fixture(scope="module")
def setup():
  params = twin_cnn.weights(0)
  clf = twin_cnn.classifier(params)
  rng = np.random.default_rng(0)
  images = rng.uniform(0.05, 0.95, (B, H, W, 3)).astype(np.float32)
  maps = rng.uniform(0.1, 1.0, (B, H, W)).astype(np.float32)
  maps[:, :, :6] = 0.0  # zero attribution on 6 columns
  maps[0, 3, 9] = EPS / 10  # below the threshold too
  return params, clf, images, maps


def changes(clf, images, labels, baseline, unit, score="softmax"):
  """|f_c(copy) - f_c(I)| f64[B, J] for every one-feature copy, one image at a time."""
  rows = []
  for image, label in zip(images, labels, strict=True):
    value = {"black": 0.0, "min": image.min()}[baseline]
    copies = []
    for feature in range(H * W * (3 if unit == "channel" else 1)):
      channel, pixel = divmod(feature, H * W)
      copy = image.copy()
      if unit == "channel":
        copy[pixel // W, pixel % W, channel] = value
      else:
        copy[pixel // W, pixel % W, :] = value
      copies.append(copy)
    logits = clf.logits(jnp.asarray(np.stack([image] + copies)))
    values = np.asarray(jax.nn.softmax(logits) if score == "softmax" else logits, np.float64)
    rows.append(np.abs(values[1:, label] - values[0, label]))
  return np.stack(rows)


def reference(maps, change, unit, eps=EPS, normalise=False):
  out = []
  for saliency, delta in zip(maps, change, strict=True):
    a = np.abs(saliency.ravel().astype(np.float64))
    if normalise:
      a = a / a.max()
    if unit == "channel":
      a = np.tile(a, 3)
    zero, sensitive = a < eps, delta >= eps
    out.append((int((zero & sensitive).sum()), int((~zero & ~sensitive).sum())))
  return np.array(out)


def assert_no_change_near(change, eps=EPS):
  near = np.abs(change - eps) < MARGIN
  assert not near.any(), f"output changes within rounding of eps: {change[near]}"


@pytest.mark.parametrize("unit, baseline", [("pixel", "black"), ("channel", "min")])
def test_matches_the_reference_and_chunks(setup, unit, baseline):
  _, clf, images, maps = setup
  labels = np.array([1, 3], np.int32)
  change = changes(clf, images, labels, baseline, unit, "logit")
  assert_no_change_near(change)
  want = reference(maps, change, unit)
  for chunk in (256, 37):
    got = non_sensitivity(clf, images, maps, labels, eps=EPS, baseline=baseline, unit=unit,
                          score="logit", chunk=chunk)
    assert isinstance(got, NonSensitivity) and got.violations.dtype == jnp.int32
    np.testing.assert_array_equal(got.zero_but_sensitive, want[:, 0])
    np.testing.assert_array_equal(got.nonzero_but_insensitive, want[:, 1])
    np.testing.assert_array_equal(got.violations, want.sum(1))
  assert (want[:, 0] > 0).all()  # the test exercises the count


def test_known_answer_on_a_region_classifier():
  """The classifier reads only a rectangle: a map non-zero exactly on it has no violation,
  one zero on it has every rectangle pixel as zero-but-sensitive."""
  region = (4, 12, 4, 8)
  clf = tiny_classifiers.region_classifier(H, W, region)
  images = np.random.default_rng(1).uniform(0.5, 1.0, (B, H, W, 3)).astype(np.float32)
  inside = np.zeros((B, H, W), np.float32)
  inside[:, 4:12, 4:8] = 1.0
  labels = np.array([0, 1], np.int32)
  good = non_sensitivity(clf, images, inside, labels)
  np.testing.assert_array_equal(good.violations, [0, 0])
  bad = non_sensitivity(clf, images, 1.0 - inside, labels)
  np.testing.assert_array_equal(bad.zero_but_sensitive, [32, 32])
  np.testing.assert_array_equal(bad.nonzero_but_insensitive, [H * W - 32] * 2)
  # normalise: relative to each map's maximum, so a scaled map counts the same.
  scaled = non_sensitivity(clf, images, 1e-7 * inside, labels, normalise=True)
  np.testing.assert_array_equal(scaled.violations, [0, 0])
  assert (non_sensitivity(clf, images, 1e-7 * inside, labels).zero_but_sensitive == 32).all()


def test_under_jit(setup):
  _, clf, images, maps = setup
  labels = jnp.array([0, 2], jnp.int32)
  eager = non_sensitivity(clf, images, maps, labels)
  jitted = jax.jit(lambda x, m: non_sensitivity(clf, x, m, labels))(images, maps)
  for a, b in zip(eager, jitted, strict=True):
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("change, error, pattern", [
    ({"eps": -1.0}, ValueError, "eps"),
    ({"output_eps": float("inf")}, ValueError, "output_eps"),
    ({"normalise": "yes"}, TypeError, "normalise"),
    ({"baseline": "sepia"}, ValueError, "baseline must be one of"),
    ({"unit": "patch"}, ValueError, "unit"),
    ({"score": "prob"}, ValueError, "score"),
    ({"chunk": 0}, ValueError, "chunk"),
    ({"maps": np.zeros((B, H, W, 3), np.float32)}, ValueError, "maps must have shape"),
    ({"images": np.full((B, H, W, 3), 2.0, np.float32)}, ValueError, "pixel space"),
])
def test_bad_inputs_are_rejected(setup, change, error, pattern):
  _, clf, images, maps = setup
  arguments = {"images": images, "maps": maps} | change
  images, maps = arguments.pop("images"), arguments.pop("maps")
  with pytest.raises(error, match=pattern):
    non_sensitivity(clf, images, maps, **arguments)


def run_quantus(quantus, torch, params, images, maps, labels, softmax):
  metric = quantus.NonSensitivity(eps=EPS, features_in_step=1, normalise=False, abs=True,
                                  perturb_baseline="black", disable_warnings=True,
                                  display_progressbar=False)
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    return np.asarray(metric(
        model=twin_cnn.torch_model(torch, params), x_batch=images.transpose(0, 3, 1, 2).copy(),
        y_batch=labels, a_batch=maps[:, None].copy(), device="cpu", batch_size=B,
        channel_first=True, softmax=softmax))


def test_equal_to_quantus(setup, quantus, torch):
  """Quantus's NonSensitivity (features_in_step=1, no normalisation, baseline "black" = the
  image's minimum) on the torch twin = violations with unit="channel", baseline="min".

  Logits: exact counts, no output change lying within rounding of eps (checked). Softmax
  (Quantus's default): probabilities' changes crowd around eps, so the counts may differ by
  the features whose change lies within 5e-7 of eps (the probabilities' disagreement,
  p (1 - p) times the logits' ~5e-7, with margin), and by no more."""
  params, clf, images, maps = setup
  labels = np.array([1, 3], np.int32)
  assert_no_change_near(changes(clf, images, labels, "min", "channel", "logit"))
  want = run_quantus(quantus, torch, params, images, maps, labels, softmax=False)
  got = non_sensitivity(clf, images, maps, labels, eps=EPS, unit="channel", baseline="min",
                        score="logit")
  np.testing.assert_array_equal(got.violations, want)
  assert (want > 0).all()
  want = run_quantus(quantus, torch, params, images, maps, labels, softmax=True)
  got = non_sensitivity(clf, images, maps, labels, eps=EPS, unit="channel", baseline="min")
  change = changes(clf, images, labels, "min", "channel", "softmax")
  ambiguous = (np.abs(change - EPS) < 5e-7).sum(axis=1)
  assert (np.abs(np.asarray(got.violations) - want) <= ambiguous).all(), (got, want, ambiguous)
