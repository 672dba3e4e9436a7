"""Tests of salijax.metrics.sensitivity: a slow reference, known answers, Quantus 0.6.0."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import robustness_inputs as ri
from float_tolerance import EPS, sum_rtol

from salijax import methods
from salijax.metrics import perturbed_explanations
from salijax.metrics.sensitivity import noise_of, sensitivity

pytestmark = pytest.mark.xdist_group("sensitivity")

J = 7
RADIUS = 0.2


def copies(num_samples=J, radius=RADIUS):
  return perturbed_explanations.perturbed_images(ri.KEY, ri.images(), num_samples,
                                                 noise_of(radius))


def reference(maps_of, images, labels, copies_, relative=True):
  """The module doc's definition, one copy at a time, norms in float64."""
  base = np.asarray(maps_of(images, labels), np.float64)
  changes = np.zeros((len(images), len(copies_)))
  for j, copy in enumerate(np.asarray(copies_)):
    moved = np.asarray(maps_of(copy, labels), np.float64)
    for b in range(len(images)):
      changes[b, j] = np.linalg.norm(moved[b] - base[b])
      if relative:
        changes[b, j] /= np.linalg.norm(base[b])
  return changes.max(axis=1), changes.mean(axis=1)


def test_copies_are_the_uniform_noise_of_the_key():
  x = np.asarray(ri.images())
  c = np.asarray(copies())
  noise = c - x[None]
  assert c.shape == (J, ri.B, ri.H, ri.W, 3)
  assert np.abs(noise).max() <= RADIUS * (1 + EPS) and noise.min() < -0.9 * RADIUS
  assert len(np.unique(noise[:, :, 0, 0, 0])) == J * ri.B  # independent copies
  # Copy j of image b depends on (key, j, b), not on later images nor the number of copies.
  fewer = perturbed_explanations.perturbed_images(ri.KEY, ri.images()[:2], 3, noise_of(RADIUS))
  np.testing.assert_array_equal(fewer, c[:3, :2])


@pytest.mark.parametrize("relative", [True, False])
def test_equals_a_slow_reference(relative):
  result = sensitivity(methods.gradient, ri.clf(), ri.images(), ri.labels(), key=ri.KEY,
                       num_samples=J, relative=relative, chunk=4)
  want = reference(ri.gradient_maps, ri.images(), ri.labels(), copies(), relative)
  # Norms of H W float32 squares of one sign, and maps of other batch arrangements (a few
  # roundings each): sum_rtol(H W) of the map differences.
  for got, expected in zip(result, want, strict=True):
    np.testing.assert_allclose(got, expected, rtol=sum_rtol(ri.H * ri.W))


def test_known_answers():
  constant = sensitivity(ri.constant_method, ri.clf(), ri.images(), key=ri.KEY, num_samples=J)
  np.testing.assert_array_equal(constant.max_sensitivity, np.zeros(ri.B))
  np.testing.assert_array_equal(constant.avg_sensitivity, np.zeros(ri.B))
  # a(x) = x's red channel: s_j = ||n_j red|| / ||x red||.
  linear = sensitivity(ri.channel_method, ri.clf(), ri.images(), key=ri.KEY, num_samples=J)
  noise = np.asarray(copies(), np.float64) - np.asarray(ri.images(), np.float64)[None]
  ratios = (np.linalg.norm(noise[..., 0], axis=(2, 3))
            / np.linalg.norm(np.asarray(ri.images())[..., 0], axis=(1, 2)))  # [J,B]
  np.testing.assert_allclose(linear.max_sensitivity, ratios.max(axis=0),
                             rtol=sum_rtol(ri.H * ri.W))
  np.testing.assert_allclose(linear.avg_sensitivity, ratios.mean(axis=0),
                             rtol=sum_rtol(ri.H * ri.W))


@pytest.mark.parametrize("quantus_name", ["MaxSensitivity", "AvgSensitivity"])
def test_equals_quantus_on_the_same_perturbations(quantus, torch, quantus_name):
  field = {"MaxSensitivity": "max_sensitivity", "AvgSensitivity": "avg_sensitivity"}
  drawn = copies()
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    metric = getattr(quantus, quantus_name)(
        nr_samples=J, lower_bound=RADIUS, perturb_func=ri.PreDrawn(drawn), normalise=False,
        abs=False, return_aggregate=False, disable_warnings=True, display_progressbar=False)
    want = ri.run_quantus(torch, metric, drawn)
  got = getattr(sensitivity(methods.gradient, ri.clf(), ri.images(), ri.labels(), key=ri.KEY,
                            num_samples=J, radius=RADIUS, chunk=5), field[quantus_name])
  # Quantus: the same maps (salijax's gradient, batch by batch) and float32 numpy norms.
  np.testing.assert_allclose(got, want, rtol=sum_rtol(ri.H * ri.W))


def test_invariant_to_chunk_and_jit():
  run = lambda chunk: sensitivity(methods.gradient, ri.clf(), ri.images(), ri.labels(),  # noqa: E731
                                  key=ri.KEY, num_samples=J, chunk=chunk)
  reference_ = run(3)  # one copy of every image per call, 7 calls
  for chunk in (7, 1000):  # 2 copies (3 chunks and 1 left), all 7 at once
    for got, want in zip(run(chunk), reference_, strict=True):
      np.testing.assert_allclose(got, want, rtol=sum_rtol(ri.H * ri.W))
  jitted = jax.jit(lambda x, y: sensitivity(methods.gradient, ri.clf(), x, y, key=ri.KEY,
                                            num_samples=J, chunk=3))(ri.images(), ri.labels())
  for got, want in zip(jitted, reference_, strict=True):
    np.testing.assert_allclose(got, want, rtol=sum_rtol(ri.H * ri.W))


def test_a_method_that_draws_gets_one_key_for_x_and_every_copy():
  # SmoothGrad with the same key for every copy: chunking does not change its noise.
  run = lambda chunk: sensitivity("smoothgrad", ri.clf(), ri.images(), ri.labels(),  # noqa: E731
                                  key=ri.KEY, num_samples=4, chunk=chunk,
                                  method_options={"num_samples": 3})
  a, b = run(3), run(12)
  for got, want in zip(a, b, strict=True):
    np.testing.assert_allclose(got, want, rtol=sum_rtol(ri.H * ri.W))
  assert np.all(np.asarray(a.max_sensitivity) > 0)
  # Copies barely moved (r = 1e-4): SmoothGrad's own noise is the same for x and every copy,
  # so the maps barely change. With another key per copy they would differ as much as two
  # SmoothGrad draws do: for these images ||a_key1 - a_key0|| / ||a_key0|| is 0.23 to 0.34,
  # as large as the sensitivity to r = 0.2 above.
  tiny = sensitivity("smoothgrad", ri.clf(), ri.images(), ri.labels(), key=ri.KEY,
                     num_samples=4, radius=1e-4, chunk=12, method_options={"num_samples": 3})
  assert np.all(np.asarray(tiny.max_sensitivity) < 0.1 * np.asarray(a.max_sensitivity))


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    (dict(num_samples=0), ValueError, r"num_samples.*positive"),
    (dict(chunk=0), ValueError, r"chunk.*positive"),
    (dict(radius=0.0), ValueError, r"radius.*positive"),
    (dict(radius=float("nan")), ValueError, r"radius"),
    (dict(relative=1), TypeError, r"relative.*bool"),
    (dict(key=None), TypeError, r"key"),
    (dict(method_options={"nope": 1}), TypeError, r"unknown option"),
    (dict(method_options={"key": 1}), TypeError, r"method_options.*key"),
    (dict(method=3), TypeError, r"method"),
    (dict(method="no_such_method"), ValueError, r"unknown method"),
    (dict(method=lambda clf, x, y: x[..., :2, 0]), ValueError, r"maps returned by method"),
    (dict(method=lambda clf, x, y: x[..., 0] / 0.0), ValueError, r"maps returned by method"),
    (dict(images=jnp.full((ri.B, ri.H, ri.W, 3), jnp.nan)), ValueError, r"images"),
    (dict(labels=jnp.array([0, 1, 9], jnp.int32)), ValueError, r"labels"),
])
def test_bad_inputs_raise_clear_errors(kwargs, error, match):
  args = dict(method=methods.gradient, images=ri.images(), labels=ri.labels(), key=ri.KEY,
              num_samples=2) | kwargs
  with pytest.raises(error, match=match):
    sensitivity(args.pop("method"), ri.clf(), args.pop("images"), args.pop("labels"), **args)
