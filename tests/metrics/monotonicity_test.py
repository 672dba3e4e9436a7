"""Tests of monotonicity and monotonicity_correlation: slow numpy references, linear models'
known answers, Quantus 0.6.0 on the twin CNN (fed the same values), chunks, errors, jit."""

import warnings

import faithfulness_cases as cases
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import twin_cnn
from float_tolerance import sum_atol
from scipy import stats

from salijax.metrics.monotonicity import (
    monotonicity,
    monotonicity_correlation,
    uniform_values,
)

B, H, W = 3, 24, 24


@pytest.fixture(scope="module")
def twin():
  params = twin_cnn.weights(4)
  return params, twin_cnn.classifier(params)


def ascending_groups(values, k):
  """Per image: the list of flat pixel index arrays of the groups, least salient first."""
  return [[o[t:t + k] for t in range(0, o.size, k)]
          for o in (np.argsort(v.ravel(), kind="stable") for v in values)]


def reference_curve(clf, images, maps, labels, k, baseline, score):
  curves = []
  for b, groups in enumerate(ascending_groups(maps, k)):
    x = np.full_like(images[b], cases.baseline_value(images[b], baseline)).reshape(-1, 3)
    copies = []
    for group in groups:
      x[group] = images[b].reshape(-1, 3)[group]
      copies.append(x.reshape(images[b].shape).copy())
    curves.append(cases.scores(clf, np.stack(copies), np.full(len(copies), labels[b]), score))
  return np.array(curves)


def reference_variances(clf, images, maps, labels, key, samples, k, score):
  """Per image, per group: (attribution sum, mean squared score change), float64."""
  sums, variances = [], []
  for b, groups in enumerate(ascending_groups(maps, k)):
    original = cases.scores(clf, images[b][None], labels[b:b + 1], score)[0]
    copies = []
    for t, group in enumerate(groups):
      for s in range(samples):
        u = float(uniform_values(key, t * samples + s, len(images))[b])
        x = images[b].reshape(-1, 3).copy()
        x[group] = u
        copies.append(x.reshape(images[b].shape))
    changes = cases.scores(clf, np.stack(copies), np.full(len(copies), labels[b]), score)
    variances.append(((changes - original) ** 2).reshape(len(groups), samples).mean(axis=1))
    sums.append([maps[b].ravel()[g].astype(np.float64).sum() for g in groups])
  return np.array(sums), np.array(variances)


@pytest.mark.parametrize("baseline,score", [("black", "softmax"), ("mean", "logit")])
def test_equal_to_the_numpy_reference(twin, baseline, score):
  _, clf = twin
  images, maps = cases.random_inputs(0, B, H, W)
  labels = np.array([0, 3, 1])
  got = monotonicity(clf, images, maps, labels, step_pixels=50, baseline=baseline, score=score)
  curve = reference_curve(clf, images, maps, labels, 50, baseline, score)
  error = cases.score_error(curve)
  assert got.curve.shape == (B, 12)  # ceil(576 / 50)
  np.testing.assert_allclose(got.curve, curve, rtol=0, atol=error)
  rises = np.diff(curve, axis=1)
  clear = (np.abs(rises) > 2 * error).all(axis=1)  # no step within rounding of 0
  assert clear.any()
  np.testing.assert_array_equal(np.asarray(got.monotonic)[clear], (rises >= 0).all(1)[clear])
  np.testing.assert_allclose(got.increasing_fraction[clear], (rises >= 0).mean(1)[clear])
  key = jax.random.key(3)
  got = monotonicity_correlation(clf, images, maps, labels, key=key, num_samples=3,
                                 step_pixels=50, absolute=False, score=score)
  sums, variances = reference_variances(clf, images, maps, labels, key, 3, 50, score)
  np.testing.assert_allclose(got.attribution_sums, sums, rtol=0,
                             atol=sum_atol(np.abs(maps).sum(axis=(1, 2)), H * W))
  # v = mean (f_s - f)^2: each difference within 2 error, squared relative error doubles.
  scale = np.sqrt(variances.max())
  np.testing.assert_allclose(got.variances, variances, rtol=0,
                             atol=2 * scale * 2 * error + 4 * error ** 2)
  expected = np.array([stats.spearmanr(s, v)[0] for s, v in zip(sums, variances, strict=True)])
  np.testing.assert_allclose(got.correlation, expected, rtol=0, atol=1e-5)


def test_linear_models_have_known_answers():
  rng = np.random.default_rng(1)
  weights = np.zeros((H, W), np.float32)
  weights[4:14, 6:20] = rng.uniform(0.5, 1.5, (10, 14))
  clf = cases.linear_classifier(weights)
  images, maps = cases.random_inputs(2, B, H, W)
  zeros = np.zeros(B, np.int32)
  # Logit 0 = sum of non-negative terms: adding pixels never lowers it, whatever the order;
  # logit 1 is its negative: it falls at every step that adds a pixel of the rectangle.
  rises = monotonicity(clf, images, maps, zeros, step_pixels=24, score="logit")
  assert rises.monotonic.all() and (rises.increasing_fraction == 1).all()
  falls = monotonicity(clf, images, weights[None].repeat(B, 0), zeros + 1, step_pixels=24,
                       score="logit")
  assert not falls.monotonic.any()
  # The rectangle's pixels move the score, the others never: a map on the rectangle ranks
  # the groups by their response, the complementary map against it.
  on = (weights > 0).astype(np.float32)[None] + 0.01 * np.abs(maps)
  good = monotonicity_correlation(clf, images, on, zeros, key=jax.random.key(0),
                                  num_samples=4, step_pixels=24,
                                  score="logit")
  bad = monotonicity_correlation(clf, images, 1.0 - on, zeros, key=jax.random.key(0),
                                 num_samples=4, step_pixels=24, score="logit")
  assert (good.correlation > 0.5).all() and (bad.correlation < -0.5).all()
  outside = np.asarray(good.attribution_sums) < 0.5  # groups off the rectangle
  np.testing.assert_array_equal(np.asarray(good.variances)[outside], 0.0)


def test_equal_to_quantus(twin, quantus, torch, monkeypatch):
  params, clf = twin
  images, maps = cases.random_inputs(5, B, H, W)
  labels = np.array([2, 0, 4])
  k, samples, key = 48, 4, jax.random.key(9)
  # Quantus's Monotonicity re-writes its baseline with the baseline; it computes the paper's
  # curve with a perturb_func that inserts the image's values (module doc).
  flat = np.ascontiguousarray(images.transpose(0, 3, 1, 2)).reshape(B, -1)

  def insert(arr, indices, **kwargs):
    del kwargs
    out, rows = arr.copy(), np.arange(len(arr))[:, None]
    out[rows, indices] = flat[rows, indices]
    return out

  logits = []
  model = twin_cnn.torch_model(torch, params)
  model.register_forward_hook(lambda m, i, o: logits.append(o.detach().numpy().copy()))
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    metric = quantus.Monotonicity(
        features_in_step=3 * k, perturb_func=insert, perturb_baseline="black",
        normalise=False, abs=False, return_aggregate=False, disable_warnings=True,
        display_progressbar=False)
    theirs = metric(model=model, x_batch=flat.reshape(B, 3, H, W), y_batch=labels,
                    a_batch=maps[:, None], channel_first=True, device="cpu")
  ours = monotonicity(clf, images, maps, labels, step_pixels=k, baseline="min")
  curve = np.asarray(jax.nn.softmax(np.stack(logits), axis=-1))[:, np.arange(B), labels].T
  error = cases.twin_error(np.stack(logits))
  np.testing.assert_allclose(ours.curve, curve, rtol=0, atol=error)
  assert np.asarray(ours.monotonic).tolist() == theirs
  # MonotonicityCorrelation draws one U(0, 1) value per image for each group and sample.
  draws = iter([np.asarray(uniform_values(key, j, B), np.float64)
                for j in range(H * W // k * samples)])
  monkeypatch.setattr(np.random, "uniform", lambda *args, **kwargs: next(draws))
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    metric = quantus.MonotonicityCorrelation(
        nr_samples=samples, features_in_step=3 * k, normalise=False, abs=True,
        return_aggregate=False, disable_warnings=True, display_progressbar=False)
    theirs = cases.run_quantus(torch, metric, params, images, maps, labels)
  assert next(draws, None) is None  # every value used
  ours = monotonicity_correlation(clf, images, maps, labels, key=key, num_samples=samples,
                                  step_pixels=k)
  # Rank correlations: equal while no two variances are within rounding of each other.
  np.testing.assert_allclose(ours.correlation, theirs, rtol=0, atol=1e-6)


def test_invariant_to_chunk_and_works_inside_jit(twin):
  _, clf = twin
  images, maps = cases.random_inputs(6, B, H, W)
  labels = np.array([1, 1, 0])
  key = jax.random.key(2)
  options = dict(step_pixels=100, num_samples=3, key=key)
  first = monotonicity_correlation(clf, images, maps, labels, chunk=3, **options)
  curve = monotonicity(clf, images, maps, labels, step_pixels=60, chunk=3)
  error = cases.score_error(curve.curve)
  for chunk in (1, 8, 10000):
    other = monotonicity_correlation(clf, images, maps, labels, chunk=chunk, **options)
    np.testing.assert_allclose(other.variances, first.variances, rtol=1e-5,
                               atol=4 * error * np.sqrt(np.max(first.variances)))
    np.testing.assert_allclose(other.correlation, first.correlation, atol=1e-6)
    other = monotonicity(clf, images, maps, labels, step_pixels=60, chunk=chunk)
    np.testing.assert_allclose(other.curve, curve.curve, rtol=0, atol=2 * error)

  @jax.jit
  def caller(images, maps, labels, key):
    return (monotonicity_correlation(clf, images, maps, labels, step_pixels=100,
                                     num_samples=3, key=key).correlation,
            monotonicity(clf, images, maps, labels, step_pixels=60).curve)

  jitted = caller(jnp.asarray(images), jnp.asarray(maps), jnp.asarray(labels), key)
  np.testing.assert_allclose(jitted[0], first.correlation, atol=1e-6)
  np.testing.assert_allclose(jitted[1], curve.curve, rtol=0, atol=2 * error)


@pytest.mark.parametrize("function,options,error,match", [
    (monotonicity, dict(step_pixels=0), ValueError, "step_pixels"),
    (monotonicity, dict(step_pixels=H * W + 1), ValueError, "step_pixels must be at most"),
    (monotonicity, dict(baseline="sepia"), ValueError, "baseline must be one of"),
    (monotonicity, dict(score="prob"), ValueError, "score must be one of"),
    (monotonicity, dict(chunk=0), ValueError, "chunk"),
    (monotonicity, dict(maps=np.full((B, H, W), np.inf, np.float32)), ValueError, "finite"),
    (monotonicity, dict(labels=np.array([0, 9, 1])), ValueError, "class indices"),
    (monotonicity_correlation, dict(key=None), TypeError, "key is required"),
    (monotonicity_correlation, dict(num_samples=0), ValueError, "num_samples"),
    (monotonicity_correlation, dict(absolute=1), TypeError, "absolute must be a bool"),
    (monotonicity_correlation, dict(images=np.full((B, H, W, 3), -1.0, np.float32)),
     ValueError, "pixel space"),
    (monotonicity_correlation, dict(maps=np.zeros((B, H, 3), np.float32)), ValueError,
     "maps must have shape"),
])
def test_bad_inputs_raise_clear_errors(twin, function, options, error, match):
  _, clf = twin
  images, maps = cases.random_inputs(7, B, H, W)
  args = dict(images=images, maps=maps, labels=None) | options
  if function is monotonicity_correlation:
    args = dict(key=jax.random.key(0)) | args
  with pytest.raises(error, match=match):
    function(clf, args.pop("images"), args.pop("maps"), args.pop("labels"), **args)
