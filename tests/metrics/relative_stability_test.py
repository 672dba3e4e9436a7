"""Tests of salijax.metrics.relative_stability: a slow reference, known answers, Quantus 0.6.0."""

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
from salijax.metrics.relative_stability import noise_of, relative_stability

pytestmark = pytest.mark.xdist_group("relative_stability")

J = 8
LOW, HIGH, EPS_MIN = 0.02, 0.2, 1e-6
# float32 norms of up to 3 H W (= the 8 x 8 x 12 features) squares of one sign
RTOL = sum_rtol(3 * ri.H * ri.W)
MIXED = 3  # images(3): of the J copies, 8, 2 and 3 keep the prediction of each image
FIELDS = ("ris", "rrs", "ros")


def copies(images):
  return perturbed_explanations.perturbed_images(ri.KEY, images, J, noise_of(LOW, HIGH))


def reference(images, labels, copies_, changed_predictions):
  """The module doc's definitions, one copy and image at a time, in float64."""
  clf = ri.clf()
  as64 = lambda a: np.asarray(a, np.float64)  # noqa: E731

  def relative(u, v):
    return (u - v) / (u + EPS_MIN * (u == 0))

  def parts(x):
    return (as64(ri.gradient_maps(x, labels)), as64(x),
            as64(clf.features(clf.variables, jnp.asarray(x))).reshape(len(x), -1),
            as64(clf.logits(jnp.asarray(x))))

  e, x, rep, h = parts(images)
  out = {name: np.zeros((len(images), J)) for name in FIELDS}
  same = np.zeros((len(images), J), bool)
  for j, copy in enumerate(np.asarray(copies_)):
    e2, x2, rep2, h2 = parts(copy)
    for b in range(len(images)):
      numerator = np.linalg.norm(relative(e[b], e2[b]))
      out["ris"][b, j] = numerator / max(np.linalg.norm(relative(x[b], x2[b]).ravel()), EPS_MIN)
      out["rrs"][b, j] = numerator / max(np.linalg.norm(relative(rep[b], rep2[b])), EPS_MIN)
      out["ros"][b, j] = numerator / max(np.linalg.norm(h[b] - h2[b]), EPS_MIN)
      same[b, j] = h2[b].argmax() == h[b].argmax()
  result = {}
  for name, values in out.items():
    if changed_predictions == "skip":
      result[name] = np.array([v[s].max() if s.any() else np.nan
                               for v, s in zip(values, same, strict=True)])
    elif changed_predictions == "nan":
      result[name] = np.where(same.all(axis=1), values.max(axis=1), np.nan)
    else:
      result[name] = values.max(axis=1)
  return result, same


@pytest.mark.parametrize("changed_predictions", ["skip", "nan", "keep"])
def test_equals_a_slow_reference(changed_predictions):
  images = ri.images(MIXED)
  got = relative_stability(methods.gradient, ri.clf(), images, ri.labels(), key=ri.KEY,
                           num_samples=J, changed_predictions=changed_predictions, chunk=4)
  want, same = reference(images, ri.labels(), copies(images), changed_predictions)
  np.testing.assert_array_equal(same.sum(axis=1), [8, 2, 3])  # a mix of kept and changed
  for name in FIELDS:
    np.testing.assert_allclose(getattr(got, name), want[name], rtol=RTOL, err_msg=name)


def test_known_answers():
  constant = relative_stability(ri.constant_method, ri.clf(), ri.images(MIXED), key=ri.KEY,
                                num_samples=J)
  for name in FIELDS:
    np.testing.assert_array_equal(getattr(constant, name), np.zeros(ri.B), err_msg=name)
  # images(1): every copy of image 2 changes the prediction: NaN ("skip"), the others finite.
  skipped = relative_stability(methods.gradient, ri.clf(), ri.images(1), key=ri.KEY,
                               num_samples=J)
  for name in FIELDS:
    values = np.asarray(getattr(skipped, name))
    assert np.isnan(values[2]) and np.isfinite(values[:2]).all() and (values[:2] > 0).all()
  # a(x) = x_red with representation = the input and h = L = x: ris = rrs and, with
  # identity logits, ros = ||r(a)|| / ||x - x'||.
  identity = Classifier(variables=jnp.zeros(()),
                        apply=lambda v, x: x.reshape(x.shape[0], -1) + v,
                        features=lambda v, x: x + v)
  x = ri.images(MIXED)
  result = relative_stability(ri.channel_method, identity, x, jnp.zeros(ri.B, jnp.int32),
                              key=ri.KEY, num_samples=J, changed_predictions="keep")
  np.testing.assert_allclose(result.rrs, result.ris, rtol=RTOL)
  x64 = np.asarray(x, np.float64)
  noise = np.asarray(copies(x), np.float64) - x64[None]  # [J,B,H,W,3]
  moved = np.sqrt(np.square(noise[..., 0] / x64[None, ..., 0]).sum(axis=(2, 3)))  # ||r(a)||
  ros = (moved / np.sqrt(np.square(noise).sum(axis=(2, 3, 4)))).max(axis=0)
  np.testing.assert_allclose(result.ros, ros, rtol=RTOL)


@pytest.mark.parametrize(("changed_predictions", "quantus_nan"), [("nan", True), ("keep", False)])
def test_equals_quantus_on_the_same_perturbations(quantus, torch, changed_predictions,
                                                  quantus_nan):
  drawn = copies(ri.images())
  metrics_ = {"ris": (quantus.RelativeInputStability, {}),
              "rrs": (quantus.RelativeRepresentationStability, {"layer_names": ["relu2"]}),
              "ros": (quantus.RelativeOutputStability, {})}
  got = relative_stability(methods.gradient, ri.clf(), ri.images(), ri.labels(), key=ri.KEY,
                           num_samples=J, low=LOW, high=HIGH, eps_min=EPS_MIN,
                           changed_predictions=changed_predictions, chunk=4)
  for name, (metric_class, extra) in metrics_.items():
    with warnings.catch_warnings():
      warnings.simplefilter("ignore")
      metric = metric_class(nr_samples=J, perturb_func=ri.PreDrawn(drawn), eps_min=EPS_MIN,
                            return_nan_when_prediction_changes=quantus_nan,
                            disable_warnings=True, display_progressbar=False, **extra)
      want = ri.run_quantus(torch, metric, drawn)
    if quantus_nan:  # image 2's copies all change the prediction: NaN on both sides
      assert np.isnan(want[2]) and np.isfinite(want[:2]).all()
    # The same maps; torch's logits and features agree with JAX's to ~5e-7 relative.
    np.testing.assert_allclose(getattr(got, name), want, rtol=RTOL, err_msg=name)


def test_invariant_to_chunk_and_jit():
  run = functools.partial(relative_stability, methods.gradient, ri.clf(), key=ri.KEY,
                          num_samples=J)
  x = ri.images(MIXED)
  want = run(x, ri.labels(), chunk=4)
  others = [run(x, ri.labels(), chunk=chunk) for chunk in (9, 1000)]  # 3 a call + 2 left, all
  others.append(jax.jit(lambda x, y: run(x, y, chunk=4))(x, ri.labels()))
  for other in others:
    for name in FIELDS:
      np.testing.assert_allclose(getattr(other, name), getattr(want, name), rtol=RTOL,
                                 err_msg=name)


def test_representation_defaults_to_the_explained_layer():
  clf = ri.clf()
  given = relative_stability(methods.gradient, clf, ri.images(MIXED), key=ri.KEY,
                             num_samples=J, representation=clf.features, chunk=4)
  default = relative_stability(methods.gradient, clf, ri.images(MIXED), key=ri.KEY,
                               num_samples=J, chunk=4)
  np.testing.assert_array_equal(given.rrs, default.rrs)


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    (dict(low=0.3), ValueError, r"low must be below high"),
    (dict(high=float("inf")), ValueError, r"high"),
    (dict(eps_min=0.0), ValueError, r"eps_min.*positive"),
    (dict(changed_predictions="drop"), ValueError, r"changed_predictions"),
    (dict(representation="features"), TypeError, r"representation"),
    (dict(num_samples=0), ValueError, r"num_samples"),
    (dict(key=None), TypeError, r"key"),
])
def test_bad_inputs_raise_clear_errors(kwargs, error, match):
  with pytest.raises(error, match=match):
    relative_stability(methods.gradient, ri.clf(), ri.images(), **(dict(key=ri.KEY) | kwargs))


def test_a_classifier_without_features_needs_a_representation():
  bare = Classifier(variables=ri.clf().variables, apply=ri.clf().apply)
  with pytest.raises(ValueError, match=r"clf.*features.*representation"):
    relative_stability(methods.gradient, bare, ri.images(), key=ri.KEY, num_samples=2)
