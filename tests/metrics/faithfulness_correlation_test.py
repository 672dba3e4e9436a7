"""Tests of faithfulness_correlation and faithfulness_estimate: a slow numpy reference, a linear
model's known answer, Quantus 0.6.0 on the twin CNN (fed the same subsets), chunks, errors, jit."""

import warnings

import faithfulness_cases as cases
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import twin_cnn
from float_tolerance import sum_atol

from salijax.metrics import attribution_groups
from salijax.metrics.faithfulness_correlation import (
    faithfulness_correlation,
    faithfulness_estimate,
)

B, H, W = 3, 24, 24


@pytest.fixture(scope="module")
def twin():
  params = twin_cnn.weights(3)
  return params, twin_cnn.classifier(params)


def reference_drops(clf, images, maps, labels, subsets, baseline, score):
  """Per image b: for each bool[H,W] subset, (attribution sum, score drop), in float64."""
  sums, drops = [], []
  for b in range(len(images)):
    copies = np.repeat(images[b][None], len(subsets[b]), axis=0)
    for copy, subset in zip(copies, subsets[b], strict=True):
      copy[subset] = cases.baseline_value(images[b], baseline)
    both = np.concatenate([images[b][None], copies])
    values = cases.scores(clf, both, np.full(len(both), labels[b]), score)
    drops.append(values[0] - values[1:])
    sums.append([maps[b].astype(np.float64)[s].sum() for s in subsets[b]])
  return np.array(sums), np.array(drops)


def pearson(x, y):
  return np.array([np.corrcoef(a, b)[0, 1] for a, b in zip(x, y, strict=True)])


def estimate_subsets(maps, k):
  out = []
  for m in maps:
    order = np.argsort(-m.ravel(), kind="stable")
    groups = [order[t:t + k] for t in range(0, m.size, k)]
    out.append([np.isin(np.arange(m.size), g).reshape(m.shape) for g in groups])
  return out


def random_subsets(key, runs, size, shape):
  """[B][R] bool[H,W]: the first `size` pixels of a stable argsort of each run's draws."""
  draws = np.stack([np.asarray(attribution_groups.random_draws(key, j, shape))
                    for j in range(runs)], axis=1)  # [B, R, H W]
  return list(cases.first_of_stable_order(draws, size).reshape(shape[0], runs, *shape[1:]))


def test_a_map_constant_up_to_rounding_scores_zero(twin):
  """Grad-CAM upsampled from a 1 x 1 layer: a constant map whose values differ by a few
  ulps. Its attribution sums differ by rounding alone and correlate with nothing: 0, as an
  exactly constant map, whatever the rounding; a map that varies by 1e-3 correlates."""
  _, clf = twin
  images, _ = cases.random_inputs(4, B, H, W)
  ulps = np.random.default_rng(2).integers(-3, 4, size=(B, H, W))
  flat = np.nextafter(np.float32(0.3), np.float32(1), dtype=np.float32) * (
      1 + ulps * np.finfo(np.float32).eps).astype(np.float32)
  labels = np.zeros(B, np.int32)
  for maps in (flat, np.full((B, H, W), 0.3, np.float32)):
    got = faithfulness_correlation(clf, images, maps, labels, key=jax.random.key(0),
                                   num_runs=20, subset_size=40)
    np.testing.assert_array_equal(got.correlation, 0.0)
    assert np.asarray(got.score_drops).std(axis=1).min() > 0  # the drops do vary
    got = faithfulness_estimate(clf, images, maps, labels, step_pixels=32)
    np.testing.assert_array_equal(got.correlation, 0.0)
  varied = flat + 1e-3 * np.random.default_rng(3).normal(size=(B, H, W)).astype(np.float32)
  got = faithfulness_correlation(clf, images, varied, labels, key=jax.random.key(0),
                                 num_runs=20, subset_size=40)
  assert (got.correlation != 0).all()


@pytest.mark.parametrize("baseline,score", [("black", "logit"), ("mean", "softmax")])
def test_equal_to_the_numpy_reference(twin, baseline, score):
  _, clf = twin
  images, maps = cases.random_inputs(0, B, H, W)
  labels = np.array([0, 3, 1])
  key = jax.random.key(4)
  got = faithfulness_correlation(clf, images, maps, labels, key=key, num_runs=12,
                                 subset_size=50, baseline=baseline, score=score)
  sums, drops = reference_drops(clf, images, maps, labels,
                                random_subsets(key, 12, 50, maps.shape), baseline, score)
  error = cases.score_error(cases.scores(clf, images, labels, score))
  np.testing.assert_allclose(got.score_drops, drops, rtol=0, atol=2 * error)
  np.testing.assert_allclose(got.attribution_sums, sums, rtol=0,
                             atol=sum_atol(np.abs(maps).sum(axis=(1, 2)), H * W))
  np.testing.assert_allclose(got.correlation, pearson(sums, drops), rtol=0,
                             atol=cases.pearson_atol(drops, 2 * error))
  got = faithfulness_estimate(clf, images, maps, labels, step_pixels=40, baseline=baseline,
                              score=score)
  sums, drops = reference_drops(clf, images, maps, labels, estimate_subsets(maps, 40),
                                baseline, score)
  assert got.score_drops.shape == (B, 15)  # ceil(576 / 40), the last group 16 pixels
  np.testing.assert_allclose(got.score_drops, drops, rtol=0, atol=2 * error)
  np.testing.assert_allclose(got.correlation, pearson(sums, drops), rtol=0,
                             atol=cases.pearson_atol(drops, 2 * error))


def test_a_linear_model_explained_by_gradient_times_input_correlates_perfectly():
  rng = np.random.default_rng(1)
  weights = rng.normal(size=(H, W)).astype(np.float32)
  clf = cases.linear_classifier(weights)
  images, _ = cases.random_inputs(2, B, H, W)
  exact = weights * images.sum(axis=3)  # the logit-0 drop of removing each pixel (baseline 0)
  labels = np.zeros(B, np.int32)
  got = faithfulness_correlation(clf, images, exact, labels, key=jax.random.key(0),
                                 num_runs=30, subset_size=60)
  np.testing.assert_allclose(got.correlation, 1.0, atol=1e-5)
  np.testing.assert_allclose(got.score_drops, got.attribution_sums, rtol=1e-4, atol=1e-4)
  got = faithfulness_estimate(clf, images, exact, labels, step_pixels=32)
  np.testing.assert_allclose(got.correlation, 1.0, atol=1e-5)
  # The opposite class's drops are the negated ones; a map of noise correlates far less.
  flipped = faithfulness_estimate(clf, images, exact, 1 - labels, step_pixels=32)
  np.testing.assert_allclose(flipped.correlation, -1.0, atol=1e-5)
  noise = faithfulness_estimate(clf, images, rng.normal(size=(B, H, W)).astype(np.float32),
                                labels, step_pixels=32)
  assert (np.abs(noise.correlation) < 0.9).all()


def test_equal_to_quantus_fed_the_same_subsets(twin, quantus, torch, monkeypatch):
  params, clf = twin
  images, maps = cases.random_inputs(5, B, H, W)
  labels = np.array([2, 0, 4])
  runs, size, key = 10, 40, jax.random.key(9)
  ours = faithfulness_correlation(clf, images, maps, labels, key=key, num_runs=runs,
                                  subset_size=size, baseline="min")
  subsets = random_subsets(key, runs, size, maps.shape)
  # Quantus draws np.random.choice(3 H W, 3 size) per run, image by image: give it ours.
  draws = iter([cases.channel_elements(np.flatnonzero(subsets[b][j]), H * W)
                for j in range(runs) for b in range(B)])
  monkeypatch.setattr(np.random, "choice", lambda *args, **kwargs: next(draws))
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    metric = quantus.FaithfulnessCorrelation(
        nr_runs=runs, subset_size=3 * size, perturb_baseline="black", normalise=False,
        abs=False, return_aggregate=False, disable_warnings=True, display_progressbar=False)
    logits = []
    theirs = cases.run_quantus(torch, metric, params, images, maps, labels, logits)
  assert next(draws, None) is None  # every subset used
  # The same drops up to the twins' logit differences (~5e-7), and so the same correlations
  # up to the bound those differences imply.
  drops = cases.quantus_drops(logits, labels)
  error = cases.twin_error(np.stack(logits))
  np.testing.assert_allclose(ours.score_drops, drops, rtol=0, atol=error)
  np.testing.assert_allclose(ours.correlation, theirs, rtol=0,
                             atol=cases.pearson_atol_between(ours.score_drops, drops))
  # features="values": Quantus's own subsets of single values (any size), fed ours.
  ours = faithfulness_correlation(clf, images, maps, labels, key=key, num_runs=runs,
                                  subset_size=50, features="values", baseline="min")
  draws = np.stack([np.asarray(attribution_groups.random_draws(key, j, (B, H, 3 * W)))
                    for j in range(runs)], axis=1)  # [B, R, 3 H W] in (y, x, c) order
  chosen = [[np.flatnonzero(cases.first_of_stable_order(draws[b, j], 50)) for j in range(runs)]
            for b in range(B)]
  sums = [[np.repeat(maps[b].ravel(), 3)[c].astype(np.float64).sum() for c in row]
          for b, row in enumerate(chosen)]
  np.testing.assert_allclose(ours.attribution_sums, sums, rtol=0,
                             atol=sum_atol(3 * np.abs(maps).sum(axis=(1, 2)), 3 * H * W))
  draws = iter([chosen[b][j] % 3 * H * W + chosen[b][j] // 3  # -> Quantus's (c, y, x) order
                for j in range(runs) for b in range(B)])
  monkeypatch.setattr(np.random, "choice", lambda *args, **kwargs: next(draws))
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    metric = quantus.FaithfulnessCorrelation(
        nr_runs=runs, subset_size=50, perturb_baseline="black", normalise=False,
        abs=False, return_aggregate=False, disable_warnings=True, display_progressbar=False)
    logits = []
    theirs = cases.run_quantus(torch, metric, params, images, maps, labels, logits)
  assert next(draws, None) is None
  drops = cases.quantus_drops(logits, labels)
  np.testing.assert_allclose(ours.score_drops, drops, rtol=0, atol=error)
  np.testing.assert_allclose(ours.correlation, theirs, rtol=0,
                             atol=cases.pearson_atol_between(ours.score_drops, drops))
  ours = faithfulness_estimate(clf, images, maps, labels, step_pixels=16, baseline="min")
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    metric = quantus.FaithfulnessEstimate(
        features_in_step=48, perturb_baseline="black", normalise=False, abs=False,
        return_aggregate=False, disable_warnings=True, display_progressbar=False)
    logits = []
    theirs = cases.run_quantus(torch, metric, params, images, maps, labels, logits)
  drops = cases.quantus_drops(logits, labels)
  np.testing.assert_allclose(ours.score_drops, drops, rtol=0, atol=error)
  np.testing.assert_allclose(ours.correlation, theirs, rtol=0,
                             atol=cases.pearson_atol_between(ours.score_drops, drops))


def test_invariant_to_chunk_and_works_inside_jit(twin):
  _, clf = twin
  images, maps = cases.random_inputs(6, B, H, W)
  labels = np.array([1, 1, 0])
  key = jax.random.key(2)
  first = faithfulness_correlation(clf, images, maps, labels, key=key, num_runs=7,
                                   subset_size=30, chunk=3)
  estimate = faithfulness_estimate(clf, images, maps, labels, step_pixels=100, chunk=3)
  atol = cases.pearson_atol(first.score_drops, 4 * cases.score_error(first.score_drops))
  for chunk in (1, 8, 10000):
    other = faithfulness_correlation(clf, images, maps, labels, key=key, num_runs=7,
                                     subset_size=30, chunk=chunk)
    np.testing.assert_allclose(other.correlation, first.correlation, rtol=0, atol=atol)
    np.testing.assert_array_equal(other.attribution_sums, first.attribution_sums)
    other = faithfulness_estimate(clf, images, maps, labels, step_pixels=100, chunk=chunk)
    np.testing.assert_allclose(other.correlation, estimate.correlation, rtol=0, atol=atol)
  other_key = faithfulness_correlation(clf, images, maps, labels, key=jax.random.key(3),
                                       num_runs=7, subset_size=30)
  assert not np.allclose(other_key.attribution_sums, first.attribution_sums)

  @jax.jit
  def caller(images, maps, labels, key):
    return (faithfulness_correlation(clf, images, maps, labels, key=key, num_runs=7,
                                     subset_size=30).correlation,
            faithfulness_estimate(clf, images, maps, labels, step_pixels=100).correlation)

  jitted = caller(jnp.asarray(images), jnp.asarray(maps), jnp.asarray(labels), key)
  np.testing.assert_allclose(jitted[0], first.correlation, rtol=0, atol=atol)
  np.testing.assert_allclose(jitted[1], estimate.correlation, rtol=0, atol=atol)
  predicted = faithfulness_estimate(clf, images, maps, step_pixels=100)
  labels = np.asarray(clf.logits(jnp.asarray(images))).argmax(axis=1)
  np.testing.assert_allclose(
      predicted.correlation,
      faithfulness_estimate(clf, images, maps, labels, step_pixels=100).correlation, atol=atol)


@pytest.mark.parametrize("options,error,match", [
    (dict(num_runs=0), ValueError, "num_runs"),
    (dict(subset_size=577), ValueError, "subset_size must be at most the pixels"),
    (dict(subset_size=3 * 576 + 1, features="values"), ValueError, "at most the values"),
    (dict(features="channels"), ValueError, "features must be one of"),
    (dict(baseline="sepia"), ValueError, "baseline must be one of"),
    (dict(score="prob"), ValueError, "score must be one of"),
    (dict(chunk=0), ValueError, "chunk"),
    (dict(key=None), TypeError, "key is required"),
    (dict(maps=np.full((B, H, W), np.nan, np.float32)), ValueError, "finite"),
    (dict(maps=np.zeros((B, H, 5), np.float32)), ValueError, "maps must have shape"),
    (dict(images=np.full((B, H, W, 3), 2.0, np.float32)), ValueError, "pixel space"),
    (dict(labels=np.array([0, 9, 1])), ValueError, "class indices"),
])
def test_bad_inputs_raise_clear_errors(twin, options, error, match):
  _, clf = twin
  images, maps = cases.random_inputs(7, B, H, W)
  args = dict(images=images, maps=maps, labels=None, key=jax.random.key(0)) | options
  with pytest.raises(error, match=match):
    faithfulness_correlation(clf, args.pop("images"), args.pop("maps"), args.pop("labels"),
                             **args)
  if {"key", "num_runs", "subset_size", "features"} & set(options):
    return
  del args["key"]
  with pytest.raises(error, match=match):
    faithfulness_estimate(clf, images if "images" not in options else options["images"],
                          options.get("maps", maps), options.get("labels"),
                          **{k: v for k, v in args.items() if k not in ("images", "maps",
                                                                        "labels")})
  with pytest.raises(ValueError, match="step_pixels must be at most"):
    faithfulness_estimate(clf, images, maps, step_pixels=H * W + 1)
