"""salijax.pipeline.metric_calls: which catalogued metrics the benchmark calls, and how."""

import pathlib
import sys
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from salijax import methods, metrics
from salijax.metrics import catalogue
from salijax.pipeline import metric_calls

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "methods"))
import tiny_classifiers  # noqa: E402

# Catalogued metrics that are no config.metrics entry: the benchmark computes the first two
# in its own way (evaluation and sanity stages); smooth MPRT's results are per block, as the
# sanity check's.
CALLED_ELSEWHERE = {"explanation_robustness", "sanity_check", "smooth_mprt"}


@pytest.fixture(scope="module")
def batch():
  """(clf, images f32[3,16,16,3], maps f32[3,16,16], labels, masks bool[3,16,16])."""
  clf = tiny_classifiers.random_cnn(jax.random.key(0))
  images = tiny_classifiers.tinted_images(batch=3, size=16)
  maps = jax.random.uniform(jax.random.key(1), (3, 16, 16))
  masks = np.zeros((3, 16, 16), bool)
  masks[:, 4:10, 3:12] = True
  return clf, images, maps, jnp.array([0, 2, 1]), jnp.asarray(masks)


def test_every_catalogued_metric_follows_a_calling_convention():
  """What the lead checks after merging new metrics: each one can be a config.metrics entry."""
  for name in catalogue.names():
    if name not in CALLED_ELSEWHERE:
      metric_calls.check_metric(name)  # raises, naming the metric and what is wrong


@pytest.mark.parametrize("name, message", [
    ("nonexistent", "unknown metric 'nonexistent'; catalogued: .*localisation"),
    ("explanation_robustness", r"called as explanation_robustness\(maps, \*\*options\).*"
     r"explanation_robustness\(map_of_perturbed"),
    ("sanity_check", "none of its fields .* has one value per image"),
])
def test_metrics_the_benchmark_cannot_call_are_refused(name, message):
  with pytest.raises(ValueError, match=message):
    metric_calls.check_metric(name)


def test_options_are_the_keyword_parameters_after_the_positional_ones():
  assert metric_calls.accepted_options("localisation") == (
      "k", "ties", "attribution", "weighted", "concept_influence", "absolute")
  assert metric_calls.accepted_options("complexity") == ("sparseness_offset",)
  options = metric_calls.accepted_options("insertion_deletion")
  assert "step_pixels" in options and "labels" not in options and "key" not in options


@pytest.mark.parametrize("options, message", [
    ({"kk": 3}, r"unknown options \['kk'\] of localisation; its options: k, ties.*"
     r"localisation\(maps: Any, region: Any, \*, k: int \| None = None"),
    ({"key": 3}, "unknown options .'key'.*derives it from"),
])
def test_unknown_options_name_the_signature(options, message):
  with pytest.raises(ValueError, match=message):
    metric_calls.check_options("localisation", options)


def test_benchmark_defaults_only_where_the_metric_takes_them():
  assert metric_calls.options_with_defaults("insertion_deletion", {"step_pixels": 8}) == {
      "allow_constant_maps": True, "step_pixels": 8}
  assert metric_calls.options_with_defaults(
      "insertion_deletion", {"allow_constant_maps": False}) == {"allow_constant_maps": False}
  assert metric_calls.options_with_defaults("localisation", {"k": 5}) == {"k": 5}


def test_metric_keys_depend_on_every_part():
  def data(*args):
    return jax.random.key_data(metric_calls.metric_key(*args))

  base = (0, "resnet18_scratch", "gradcam", 1, "road")
  np.testing.assert_array_equal(data(*base), data(*base))
  for i, other in enumerate((1, "vgg11_scratch", "rise", 2, "pixel_flipping")):
    changed = list(base)
    changed[i] = other
    assert not np.array_equal(data(*changed), data(*base)), i


def test_region_map_and_model_metrics_equal_direct_calls(batch):
  clf, images, maps, labels, masks = batch
  got = metric_calls.call("localisation", maps=maps, region=masks, options={"k": 7})
  want = metrics.localisation(maps, masks, k=7)
  for field in want._fields:
    np.testing.assert_array_equal(getattr(got, field), getattr(want, field))
  np.testing.assert_array_equal(metric_calls.call("complexity", maps=maps).entropy,
                                metrics.complexity(maps).entropy)
  got = metric_calls.call("confidence_change", clf=clf, images=images, maps=maps, labels=labels,
                          key=jax.random.key(3))  # no key parameter: not passed
  np.testing.assert_allclose(got.drop, metrics.confidence_change(clf, images, maps, labels).drop,
                             rtol=1e-6, atol=1e-7)


class _Mean(NamedTuple):
  value: jax.Array  # f32[B]


def _method_metric(method, clf, images, labels=None, *, key, method_options=None, scale=1.0):
  """A method metric: scale x the mean of the method's maps."""
  maps = method(clf, images, labels, key=key, **(method_options or {}))
  return _Mean(scale * maps.mean(axis=(1, 2)))


def test_method_metrics_get_the_method_its_options_and_the_key(batch, monkeypatch):
  clf, images, _, labels, _ = batch
  monkeypatch.setattr(metrics, "method_mean", _method_metric, raising=False)
  monkeypatch.setitem(catalogue._METRICS, "method_mean", catalogue.MetricInfo(
      "method_mean", {"value": catalogue.Field("f32[B]", None)}, needs_model=True,
      needs_method=True))
  metric_calls.check_metric("method_mean")
  assert metric_calls.accepted_options("method_mean") == ("scale",)
  with pytest.raises(ValueError, match="method_options.*config.method_options gives them"):
    metric_calls.check_options("method_mean", {"method_options": {}})
  key = jax.random.key(5)
  got = metric_calls.call("method_mean", clf=clf, images=images, labels=labels, method="rise",
                          method_options={"num_masks": 8, "chunk": 8}, key=key,
                          options={"scale": 2.0})
  maps = methods.get("rise")(clf, images, labels, key=key, num_masks=8, chunk=8)
  np.testing.assert_allclose(got.value, 2.0 * maps.mean(axis=(1, 2)), rtol=1e-5)
