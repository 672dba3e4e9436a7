"""Tests of infidelity: a slow numpy reference, a linear model's known answer, Quantus 0.6.0 on
the twin CNN (its deterministic patches), chunks, errors, jit."""

import warnings

import faithfulness_cases as cases
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import twin_cnn
from float_tolerance import sum_rtol

from salijax.metrics.infidelity import gaussian_noise, infidelity

B, H, W = 3, 16, 16


@pytest.fixture(scope="module")
def twin():
  params = twin_cnn.weights(5)
  return params, twin_cnn.classifier(params)


def reference(clf, images, maps, labels, perturbations, score):
  """mean_j (I_j . a - (f(x) - f(x - I_j)))^2 per image, float64; perturbations[b] = [I_j]."""
  out = []
  for b in range(len(images)):
    copies = images[b][None] - perturbations[b]
    values = cases.scores(clf, np.concatenate([images[b][None], copies]),
                          np.full(len(copies) + 1, labels[b]), score)
    dots = np.einsum("jhwc,hw->j", perturbations[b].astype(np.float64), maps[b])
    out.append(np.mean((dots - (values[0] - values[1:])) ** 2))
  return np.array(out)


def patch_perturbations(images, p, baseline):
  """Per image: I_j = x - (x with patches 0..j in raster order at the baseline)."""
  out = []
  for image in images:
    x = image.copy()
    steps = []
    for y0 in range(0, H, p):
      for x0 in range(0, W, p):
        x[y0:y0 + p, x0:x0 + p] = cases.baseline_value(image, baseline)
        steps.append(image - x)
    out.append(np.stack(steps))
  return out


def tolerance(clf, images, maps, labels, perturbations, score, expected):
  """(d - e)^2 with d, e each within a bound: |2 (d - e) err + err^2|, err = the drop's
  float32 error plus the dot product's (sum_rtol of its terms' magnitudes)."""
  drop = 2 * cases.score_error(cases.scores(clf, images, labels, score))
  dot = max(sum_rtol(H * W * 3) * np.abs(np.asarray(pert) * maps[b][None, ..., None]).sum(
      axis=(1, 2, 3)).max() for b, pert in enumerate(perturbations))
  err = drop + dot
  return 2 * np.sqrt(expected.max()) * err + err ** 2


@pytest.mark.parametrize("score", ["logit", "softmax"])
def test_equal_to_the_numpy_reference(twin, score):
  _, clf = twin
  images, maps = cases.random_inputs(0, B, H, W)
  maps *= 0.05
  labels = np.array([0, 3, 1])
  key = jax.random.key(4)
  got = infidelity(clf, images, maps, labels, key=key, num_samples=9, noise_std=0.3,
                   score=score)
  noise = np.stack([np.asarray(gaussian_noise(key, j, images.shape, 0.3)) for j in range(9)],
                   axis=1)
  expected = reference(clf, images, maps, labels, list(noise), score)
  np.testing.assert_allclose(
      got.infidelity, expected, rtol=0,
      atol=tolerance(clf, images, maps, labels, list(noise), score, expected))
  for p, baseline in ((4, "min"), (5, "mean")):  # 5: smaller patches at the edges
    got = infidelity(clf, images, maps, labels, perturbation="patches", patch_size=p,
                     baseline=baseline, score=score)
    perturbations = patch_perturbations(images, p, baseline)
    expected = reference(clf, images, maps, labels, perturbations, score)
    np.testing.assert_allclose(
        got.infidelity, expected, rtol=0,
        atol=tolerance(clf, images, maps, labels, perturbations, score, expected))


def test_the_gradient_of_a_linear_model_has_no_infidelity():
  rng = np.random.default_rng(1)
  weights = rng.normal(size=(H, W)).astype(np.float32)
  clf = cases.linear_classifier(weights)
  images, _ = cases.random_inputs(2, B, H, W)
  gradient = np.repeat(weights[None], B, axis=0)
  labels = np.zeros(B, np.int32)
  for options in (dict(key=jax.random.key(0), num_samples=20),
                  dict(perturbation="patches", patch_size=4)):
    exact = infidelity(clf, images, gradient, labels, **options).infidelity
    doubled = infidelity(clf, images, 2 * gradient, labels, **options).infidelity
    # Rounding only: the drops and products of ~H W 3 terms of size <= |w| agree to ~1e-4.
    np.testing.assert_allclose(exact, 0.0, atol=1e-6)
    assert (doubled > 1e-2).all()  # E[(I . w)^2]: the whole change is mispredicted
    # Gradient of logit 1 = -w: the map w predicts every change with the wrong sign, an error
    # of 2 I . w: four times the doubled map's.
    flipped = infidelity(clf, images, gradient, 1 - labels, **options).infidelity
    np.testing.assert_allclose(flipped, 4 * doubled, rtol=1e-4)


def test_equal_to_quantus(twin, quantus, torch):
  params, clf = twin
  images, maps = cases.random_inputs(5, B, H, W)
  maps *= 0.05
  labels = np.array([2, 0, 4])
  ours = infidelity(clf, images, maps, labels, perturbation="patches", patch_size=4)
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    metric = quantus.Infidelity(
        perturb_patch_sizes=[4], n_perturb_samples=2, perturb_baseline="black",
        normalise=False, abs=False, return_aggregate=False, disable_warnings=True,
        display_progressbar=False)
    theirs = cases.run_quantus(torch, metric, params, images, maps, labels)
  perturbations = patch_perturbations(images, 4, "min")
  drops_error = cases.twin_error(cases.scores(clf, images, labels, "logit"))
  dot = max(sum_rtol(H * W * 3) * np.abs(np.asarray(pert) * maps[b][None, ..., None]).sum(
      axis=(1, 2, 3)).max() for b, pert in enumerate(perturbations))
  err = drops_error + dot
  np.testing.assert_allclose(ours.infidelity, theirs, rtol=0,
                             atol=2 * np.sqrt(np.max(theirs)) * err + err ** 2)


def test_invariant_to_chunk_and_works_inside_jit(twin):
  _, clf = twin
  images, maps = cases.random_inputs(6, B, H, W)
  labels = np.array([1, 1, 0])
  key = jax.random.key(2)
  first = infidelity(clf, images, maps, labels, key=key, num_samples=7, chunk=3).infidelity
  patches = infidelity(clf, images, maps, labels, perturbation="patches", chunk=3).infidelity
  # Only the forwards change with the chunk (the products I . a do not): each drop moves by
  # at most d, and mean (e + d_j)^2 - mean e^2 <= 2 sqrt(mean e^2) d + d^2.
  d = 2 * cases.score_error(np.asarray(clf.logits(jnp.asarray(images))))

  def close(got, expected):
    expected = np.asarray(expected)
    np.testing.assert_allclose(got, expected, rtol=0, atol=2 * np.sqrt(expected.max()) * d + d * d)

  for chunk in (1, 8, 10000):
    close(infidelity(clf, images, maps, labels, key=key, num_samples=7, chunk=chunk).infidelity,
          first)
    close(infidelity(clf, images, maps, labels, perturbation="patches",
                     chunk=chunk).infidelity, patches)
  other = infidelity(clf, images, maps, labels, key=jax.random.key(3), num_samples=7)
  assert not np.allclose(other.infidelity, first, rtol=1e-2)

  @jax.jit
  def caller(images, maps, labels, key):
    return (infidelity(clf, images, maps, labels, key=key, num_samples=7).infidelity,
            infidelity(clf, images, maps, labels, perturbation="patches").infidelity)

  jitted = caller(jnp.asarray(images), jnp.asarray(maps), jnp.asarray(labels), key)
  close(jitted[0], first)
  close(jitted[1], patches)


@pytest.mark.parametrize("options,error,match", [
    (dict(key=None), TypeError, "key is required"),
    (dict(num_samples=0), ValueError, "num_samples"),
    (dict(noise_std=0.0), ValueError, "noise_std"),
    (dict(perturbation="blur"), ValueError, "perturbation must be one of"),
    (dict(perturbation="patches", patch_size=17), ValueError, "patch_size must be at most"),
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
    infidelity(clf, args.pop("images"), args.pop("maps"), args.pop("labels"), **args)
