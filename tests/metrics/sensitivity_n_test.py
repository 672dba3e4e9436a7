"""Tests of sensitivity_n: a slow numpy reference, a linear model's known answer, Quantus 0.6.0
(each column is Quantus's FaithfulnessCorrelation at that subset size, fed the same subsets;
Quantus's own SensitivityN computes another quantity, see the module doc), chunks, errors, jit."""

import warnings

import faithfulness_cases as cases
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import twin_cnn

from salijax.metrics import attribution_groups
from salijax.metrics.sensitivity_n import default_subset_sizes, sensitivity_n

B, H, W = 3, 16, 16
SIZES = (1, 10, 60)


@pytest.fixture(scope="module")
def twin():
  params = twin_cnn.weights(6)
  return params, twin_cnn.classifier(params)


def subsets_of(key, sizes, samples, shape):
  """bool[B, N, S, H, W]: the subsets of the module doc's jobs i S + j."""
  draws = np.stack([np.asarray(attribution_groups.random_draws(key, j, shape))
                    for j in range(len(sizes) * samples)], axis=1)
  draws = draws.reshape(shape[0], len(sizes), samples, -1)
  subsets = np.stack([cases.first_of_stable_order(draws[:, i], n) for i, n in enumerate(sizes)], 1)
  return subsets.reshape(shape[0], len(sizes), samples, *shape[1:])


def reference(clf, images, maps, labels, subsets, baseline, score):
  """f64[B, N] correlations and f64[B, N, S] drops, one image and subset at a time."""
  correlations, all_drops = [], []
  for b in range(len(images)):
    row, row_drops = [], []
    for per_n in subsets[b]:
      copies = np.repeat(images[b][None], len(per_n), axis=0)
      for copy, subset in zip(copies, per_n, strict=True):
        copy[subset] = cases.baseline_value(images[b], baseline)
      values = cases.scores(clf, np.concatenate([images[b][None], copies]),
                            np.full(len(copies) + 1, labels[b]), score)
      drops = values[0] - values[1:]
      sums = [maps[b].astype(np.float64)[s].sum() for s in per_n]
      row.append(np.corrcoef(sums, drops)[0, 1])
      row_drops.append(drops)
    correlations.append(row)
    all_drops.append(row_drops)
  return np.array(correlations), np.array(all_drops)


@pytest.mark.parametrize("baseline,score", [("black", "softmax"), ("mean", "logit")])
def test_equal_to_the_numpy_reference(twin, baseline, score):
  _, clf = twin
  images, maps = cases.random_inputs(0, B, H, W)
  labels = np.array([0, 3, 1])
  key = jax.random.key(4)
  got = sensitivity_n(clf, images, maps, labels, key=key, subset_sizes=SIZES, num_samples=8,
                      baseline=baseline, score=score)
  expected, drops = reference(clf, images, maps, labels, subsets_of(key, SIZES, 8, maps.shape),
                              baseline, score)
  assert got.correlation.shape == (B, len(SIZES))
  error = 2 * cases.score_error(cases.scores(clf, images, labels, score))
  for i in range(len(SIZES)):
    np.testing.assert_allclose(got.correlation[:, i], expected[:, i], rtol=0,
                               atol=cases.pearson_atol(drops[:, i], error))


def test_gradient_times_input_of_a_linear_model_is_sensitive_for_every_n():
  rng = np.random.default_rng(1)
  weights = rng.normal(size=(H, W)).astype(np.float32)
  clf = cases.linear_classifier(weights)
  images, _ = cases.random_inputs(2, B, H, W)
  exact = weights * images.sum(axis=3)
  labels = np.zeros(B, np.int32)
  got = sensitivity_n(clf, images, exact, labels, key=jax.random.key(0), num_samples=20,
                      score="logit")
  sizes = default_subset_sizes(H * W)
  assert got.correlation.shape == (B, len(sizes))
  assert sizes[0] == 1 and sizes[-1] == int(0.8 * H * W) and len(sizes) == 10
  np.testing.assert_allclose(got.correlation, 1.0, atol=1e-5)
  noise = sensitivity_n(clf, images, rng.normal(size=(B, H, W)).astype(np.float32), labels,
                        key=jax.random.key(0), num_samples=20, score="logit")
  assert (np.abs(noise.correlation).mean(axis=1) < 0.5).all()


def test_each_column_equals_quantus_faithfulness_correlation(twin, quantus, torch, monkeypatch):
  params, clf = twin
  images, maps = cases.random_inputs(5, B, H, W)
  labels = np.array([2, 0, 4])
  samples, key = 8, jax.random.key(9)
  ours = sensitivity_n(clf, images, maps, labels, key=key, subset_sizes=SIZES,
                       num_samples=samples, baseline="min", score="logit")
  subsets = subsets_of(key, SIZES, samples, maps.shape)
  error = cases.twin_error(cases.scores(clf, images, labels, "logit"))
  float_error = cases.score_error(cases.scores(clf, images, labels, "logit"))
  # Our drops are not returned: the reference's (float64 sums of float32 logits) stand in,
  # within the float32 bound of ours (test_equal_to_the_numpy_reference).
  _, drops = reference(clf, images, maps, labels, subsets, "min", "logit")
  for i, n in enumerate(SIZES):
    draws = iter([cases.channel_elements(np.flatnonzero(subsets[b, i, j]), H * W)
                  for j in range(samples) for b in range(B)])
    monkeypatch.setattr(np.random, "choice", lambda *args, draws=draws, **kwargs: next(draws))
    with warnings.catch_warnings():
      warnings.simplefilter("ignore")
      metric = quantus.FaithfulnessCorrelation(
          nr_runs=samples, subset_size=3 * n, perturb_baseline="black", normalise=False,
          abs=False, return_aggregate=False, disable_warnings=True, display_progressbar=False)
      logits = []
      theirs = cases.run_quantus(torch, metric, params, images, maps, labels, logits)
    assert next(draws, None) is None
    # The same drops as ours up to the twins' logit differences, so the same correlations
    # up to the bound those differences imply.
    their_drops = cases.quantus_drops(logits, labels)
    np.testing.assert_allclose(drops[:, i], their_drops, rtol=0, atol=error)
    np.testing.assert_allclose(ours.correlation[:, i], theirs, rtol=0,
                               atol=cases.pearson_atol_between(drops[:, i], their_drops)
                               + cases.pearson_atol(drops[:, i], 2 * float_error))


def test_invariant_to_chunk_and_works_inside_jit(twin):
  _, clf = twin
  images, maps = cases.random_inputs(6, B, H, W)
  labels = np.array([1, 1, 0])
  key = jax.random.key(2)
  options = dict(key=key, subset_sizes=SIZES, num_samples=5)
  first = sensitivity_n(clf, images, maps, labels, chunk=3, **options).correlation
  _, drops = reference(clf, images, maps, labels, subsets_of(key, SIZES, 5, maps.shape),
                       "black", "softmax")
  error = 4 * cases.score_error(cases.scores(clf, images, labels, "softmax"))
  atol = max(cases.pearson_atol(drops[:, i], error) for i in range(len(SIZES)))
  for chunk in (1, 8, 10000):
    other = sensitivity_n(clf, images, maps, labels, chunk=chunk, **options).correlation
    np.testing.assert_allclose(other, first, rtol=0, atol=atol)

  @jax.jit
  def caller(images, maps, labels, key):
    return sensitivity_n(clf, images, maps, labels, key=key, subset_sizes=SIZES,
                         num_samples=5).correlation

  jitted = caller(jnp.asarray(images), jnp.asarray(maps), jnp.asarray(labels), key)
  np.testing.assert_allclose(jitted, first, rtol=0, atol=atol)


@pytest.mark.parametrize("options,error,match", [
    (dict(key=None), TypeError, "key is required"),
    (dict(num_samples=0), ValueError, "num_samples"),
    (dict(subset_sizes=()), ValueError, "non-empty sequence"),
    (dict(subset_sizes=5), ValueError, "non-empty sequence"),
    (dict(subset_sizes=(1, 0)), ValueError, "subset_sizes must be a positive"),
    (dict(subset_sizes=(1, 257)), ValueError, "subset_sizes must be at most"),
    (dict(subset_sizes=(4, 4)), ValueError, "distinct"),
    (dict(baseline="sepia"), ValueError, "baseline must be one of"),
    (dict(score="prob"), ValueError, "score must be one of"),
    (dict(chunk=0), ValueError, "chunk"),
    (dict(maps=np.full((B, H, W), np.nan, np.float32)), ValueError, "finite"),
    (dict(images=np.full((B, H, W, 3), 2.0, np.float32)), ValueError, "pixel space"),
    (dict(labels=np.array([0, 9, 1])), ValueError, "class indices"),
])
def test_bad_inputs_raise_clear_errors(twin, options, error, match):
  _, clf = twin
  images, maps = cases.random_inputs(7, B, H, W)
  args = dict(images=images, maps=maps, labels=None, key=jax.random.key(0)) | options
  with pytest.raises(error, match=match):
    sensitivity_n(clf, args.pop("images"), args.pop("maps"), args.pop("labels"), **args)
