"""Tests of salijax.metrics.local_lipschitz: a slow reference, known answers, Quantus 0.6.0."""

import functools
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import robustness_inputs as ri
from float_tolerance import sum_rtol

from salijax import Classifier, methods
from salijax.metrics import perturbed_explanations
from salijax.metrics.local_lipschitz import local_lipschitz_estimate, noise_of

pytestmark = pytest.mark.xdist_group("local_lipschitz")

J = 6
STD = 0.1
RTOL = sum_rtol(3 * ri.H * ri.W)  # float32 norms of up to 3 H W squares of one sign


def copies(images=None, num_samples=J):
  images = ri.images() if images is None else images
  return perturbed_explanations.perturbed_images(ri.KEY, images, num_samples, noise_of(STD))


def reference(maps_of, images, labels, copies_):
  """max_j ||a(x) - a(x'_j)|| / ||x - x'_j||, one copy and image at a time, in float64."""
  images64 = np.asarray(images, np.float64)
  base = np.asarray(maps_of(images, labels), np.float64)
  ratios = np.zeros((len(images), len(copies_)))
  for j, copy in enumerate(np.asarray(copies_)):
    moved = np.asarray(maps_of(copy, labels), np.float64)
    for b in range(len(images)):
      ratios[b, j] = (np.linalg.norm(base[b] - moved[b])
                      / np.linalg.norm(images64[b] - copy[b].astype(np.float64)))
  return ratios.max(axis=1)


def test_copies_are_gaussian_noise_of_the_key():
  noise = np.asarray(copies(num_samples=40), np.float64) - np.asarray(ri.images())[None]
  # 40 x 3 x 768 draws of N(0, 0.1^2): the sample std within 1% (its standard error is 0.1%).
  assert abs(noise.std() / STD - 1) < 0.01 and abs(noise.mean()) < 0.01 * STD


def test_equals_a_slow_reference():
  got = local_lipschitz_estimate(methods.gradient, ri.clf(), ri.images(), ri.labels(),
                                 key=ri.KEY, num_samples=J, chunk=4).estimate
  want = reference(ri.gradient_maps, ri.images(), ri.labels(), copies())
  np.testing.assert_allclose(got, want, rtol=RTOL)


def quadratic_classifier(weight: float) -> Classifier:
  """logit_k = (k + 1) w sum(red^2) / 2: the gradient of class k is (k + 1) w red, 0 for green
  and blue, so the "sum" gradient map is a(x) = (k + 1) w x_red, linear in x."""

  def apply(variables, images):
    energy = 0.5 * jnp.sum(jnp.square(images[..., 0]), axis=(1, 2))
    return variables * energy[:, None] * jnp.arange(1.0, 4.0)

  return Classifier(variables=jnp.float32(weight), apply=apply)


def test_known_answers():
  constant = local_lipschitz_estimate(ri.constant_method, ri.clf(), ri.images(), key=ri.KEY,
                                      num_samples=J).estimate
  np.testing.assert_array_equal(constant, np.zeros(ri.B))
  # A linear model's gradient does not change with the input: estimate 0.
  weights = jax.random.normal(jax.random.key(3), (ri.H * ri.W * 3, 4))
  linear = Classifier(variables=weights,
                      apply=lambda v, x: x.reshape(x.shape[0], -1) @ v)
  still = local_lipschitz_estimate(methods.gradient, linear, ri.images(), key=ri.KEY,
                                   num_samples=J).estimate
  np.testing.assert_array_equal(still, np.zeros(ri.B))
  # a(x) = c w x_red: L = c w max_j ||n_j red|| / ||n_j||, below the Lipschitz constant c w.
  labels = jnp.array([0, 1, 2], jnp.int32)
  weight = 0.5
  estimate = local_lipschitz_estimate(
      methods.gradient, quadratic_classifier(weight), ri.images(), labels, key=ri.KEY,
      num_samples=J, method_options={"reduce": "sum"}).estimate
  noise = np.asarray(copies(), np.float64) - np.asarray(ri.images(), np.float64)[None]
  share = (np.linalg.norm(noise[..., 0], axis=(2, 3))
           / np.sqrt(np.square(noise).sum(axis=(2, 3, 4)))).max(axis=0)  # [B]
  scale = weight * np.arange(1.0, 4.0)
  np.testing.assert_allclose(estimate, scale * share, rtol=RTOL)
  assert np.all(np.asarray(estimate) <= scale)


def test_equals_quantus_on_the_same_perturbations(quantus, torch):
  drawn = copies()
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    metric = quantus.LocalLipschitzEstimate(
        nr_samples=J, perturb_std=STD, perturb_func=ri.PreDrawn(drawn), normalise=False,
        abs=False, return_aggregate=False, disable_warnings=True, display_progressbar=False)
    want = ri.run_quantus(torch, metric, drawn)
  got = local_lipschitz_estimate(methods.gradient, ri.clf(), ri.images(), ri.labels(),
                                 key=ri.KEY, num_samples=J, std=STD, chunk=6).estimate
  # The same maps (salijax's gradient), float32 numpy norms; Quantus adds 1e-10 to
  # ||x - x'|| ~ 0.1 sqrt(3 H W) ~ 2.8, far below float32's resolution there.
  np.testing.assert_allclose(got, want, rtol=RTOL)


def test_invariant_to_chunk_and_jit():
  run = functools.partial(local_lipschitz_estimate, methods.gradient, ri.clf(),
                          key=ri.KEY, num_samples=J)
  want = run(ri.images(), ri.labels(), chunk=3).estimate
  for chunk in (12, 1000):  # 4 copies a call (1 chunk and 2 left), all at once
    np.testing.assert_allclose(run(ri.images(), ri.labels(), chunk=chunk).estimate, want,
                               rtol=RTOL)
  jitted = jax.jit(lambda x, y: run(x, y, chunk=3).estimate)(ri.images(), ri.labels())
  np.testing.assert_allclose(jitted, want, rtol=RTOL)


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    (dict(num_samples=-1), ValueError, r"num_samples.*positive"),
    (dict(chunk=1.5), ValueError, r"chunk.*positive"),
    (dict(std=-0.1), ValueError, r"std.*positive"),
    (dict(std="big"), ValueError, r"std"),
    (dict(key=jnp.zeros(3)), TypeError, r"key"),
    (dict(method_options=[("reduce", "sum")]), TypeError, r"method_options"),
    (dict(method=None), TypeError, r"method"),
    (dict(images=jnp.ones((ri.B, ri.H, ri.W))), ValueError, r"images.*shape"),
])
def test_bad_inputs_raise_clear_errors(kwargs, error, match):
  args = dict(method=methods.gradient, images=ri.images(), key=ri.KEY, num_samples=2) | kwargs
  with pytest.raises(error, match=match):
    local_lipschitz_estimate(args.pop("method"), ri.clf(), args.pop("images"), **args)
