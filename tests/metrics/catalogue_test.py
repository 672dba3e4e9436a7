"""Tests of salijax.metrics.catalogue against the metric functions themselves: their return
types, signatures, results and sections of docs/metrics.md."""

import inspect
import pathlib
import re
import typing

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tiny_classifiers

from salijax import methods, metrics
from salijax.metrics import catalogue

DOCS = pathlib.Path(__file__).resolve().parents[2] / "docs" / "metrics.md"
# Exported functions returning a NamedTuple that are not metrics of maps, and why.
NOT_METRICS = {"pointing_accuracy": "a summary of pointing-game hits over a dataset"}


def namedtuple_returned(function) -> type | None:
  """The NamedTuple class a function's return annotation names, or None."""
  returned = typing.get_type_hints(function).get("return")
  return returned if isinstance(returned, type) and hasattr(returned, "_fields") else None


def exported_functions() -> dict[str, typing.Any]:
  return {name: getattr(metrics, name) for name in metrics.__all__
          if inspect.isfunction(getattr(metrics, name))}


def test_every_exported_metric_is_catalogued_with_its_namedtuple_fields():
  returning = {name: result for name, function in exported_functions().items()
               if (result := namedtuple_returned(function)) is not None}
  assert set(returning) - set(NOT_METRICS) == set(catalogue.names())
  for name in catalogue.names():
    assert tuple(catalogue.info(name).fields) == returning[name]._fields, name


def test_needs_follow_the_signatures():
  for name in catalogue.names():
    info = catalogue.info(name)
    parameters = list(inspect.signature(getattr(metrics, name)).parameters)
    assert info.needs_model == ("clf" in parameters), name
    assert info.needs_region == ("region" in parameters), name
    assert info.needs_method == ("method_fn" in parameters or "method" in parameters), name


def test_every_catalogued_metric_is_in_the_families_table():
  families = DOCS.read_text().partition("## Families")[2].partition("\n## ")[0]
  listed = re.findall(r"^\| \w+ \| \[`(\w+)`\]", families, flags=re.MULTILINE)
  assert sorted(listed) == sorted(catalogue.names())


def test_every_catalogued_metric_has_its_section_in_the_docs():
  sections = re.findall(r"^## `(\w+)`$", DOCS.read_text(), flags=re.MULTILINE)
  assert sorted(sections) == list(catalogue.names())


def test_directions():
  for name in catalogue.names():
    for field, spec in catalogue.info(name).fields.items():
      assert spec.better in (catalogue.HIGHER, catalogue.LOWER, None), (name, field)
  deletion = catalogue.info("insertion_deletion")
  assert deletion.higher_is_better("insertion_auc") is True
  assert deletion.higher_is_better("deletion_auc") is False
  assert catalogue.info("energy_pointing_game").higher_is_better("region_fraction") is None


def test_per_image_fields_have_the_declared_dtype_and_batch():
  """Every metric run on 2 images: each array field "t[B...]" has dtype t and B rows."""
  clf = tiny_classifiers.random_cnn(jax.random.key(0))
  images = jax.random.uniform(jax.random.key(1), (2, 16, 16, 3))
  maps = jax.random.uniform(jax.random.key(2), (2, 16, 16))
  labels = jnp.array([0, 1], jnp.int32)
  region = jnp.zeros((2, 16, 16), bool).at[:, 4:9, 6:12].set(True)
  results = {
      "insertion_deletion": metrics.insertion_deletion(clf, images, maps, labels,
                                                       step_pixels=64),
      "confidence_change": metrics.confidence_change(clf, images, maps, labels),
      "pointing_game": metrics.pointing_game(maps, region),
      "energy_pointing_game": metrics.energy_pointing_game(maps, region),
      "complexity": metrics.complexity(maps),
      "localisation": metrics.localisation(maps, region, k=10),
      "sanity_check": metrics.sanity_check(methods.gradcam, clf, images, labels,
                                           key=jax.random.key(3), measures=("spearman",)),
      "explanation_robustness": metrics.explanation_robustness(
          maps, maps[::-1], np.ones((16, 16), bool)),
      "effective_complexity": metrics.effective_complexity(maps),
      "completeness": metrics.completeness(clf, images, maps, labels),
      "non_sensitivity": metrics.non_sensitivity(clf, images, maps, labels),
      "random_logit": metrics.random_logit(methods.gradient, clf, images, labels,
                                           key=jax.random.key(4)),
      "smooth_mprt": metrics.smooth_mprt(methods.gradient, clf, images, labels,
                                         key=jax.random.key(5), num_samples=2),
      "efficient_mprt": metrics.efficient_mprt(methods.gradient, clf, images, labels,
                                               key=jax.random.key(6)),
      "input_invariance": metrics.input_invariance(methods.gradient, clf, images, labels,
                                                   key=jax.random.key(7)),
      "sensitivity": metrics.sensitivity(methods.gradient, clf, images, labels,
                                         key=jax.random.key(8), num_samples=2),
      "local_lipschitz_estimate": metrics.local_lipschitz_estimate(
          methods.gradient, clf, images, labels, key=jax.random.key(8), num_samples=2),
      "relative_stability": metrics.relative_stability(
          methods.gradient, clf, images, labels, key=jax.random.key(8), num_samples=2),
      "pixel_flipping": metrics.pixel_flipping(clf, images, maps, labels, features_in_step=64),
      "region_perturbation": metrics.region_perturbation(clf, images, maps, labels,
                                                         patch_size=8),
      "selectivity": metrics.selectivity(clf, images, maps, labels, patch_size=8),
      "irof": metrics.irof(clf, images, maps, labels, segments=np.repeat(
          np.arange(2, dtype=np.int32), 128).reshape(1, 16, 16).repeat(2, 0)),
      "faithfulness_correlation": metrics.faithfulness_correlation(
          clf, images, maps, labels, key=jax.random.key(4), num_runs=5, subset_size=20),
      "faithfulness_estimate": metrics.faithfulness_estimate(clf, images, maps, labels,
                                                             step_pixels=64),
      "monotonicity": metrics.monotonicity(clf, images, maps, labels, step_pixels=64),
      "monotonicity_correlation": metrics.monotonicity_correlation(
          clf, images, maps, labels, key=jax.random.key(4), num_samples=2, step_pixels=64),
      "infidelity": metrics.infidelity(clf, images, maps, labels, key=jax.random.key(4),
                                       num_samples=4),
      "sensitivity_n": metrics.sensitivity_n(clf, images, maps, labels, key=jax.random.key(4),
                                             subset_sizes=(1, 20), num_samples=4),
      "road": metrics.road(clf, images, maps, labels, key=jax.random.key(3),
                           percentages=(10, 50)),
      "pic": metrics.pic(clf, images, maps, labels, key=jax.random.key(4), num_data_points=20),
  }
  assert set(results) == set(catalogue.names())
  dtypes = {"f32": np.float32, "bool": np.bool_, "i32": np.int32}
  for name, result in results.items():
    for field, spec in catalogue.info(name).fields.items():
      kind, _, dims = spec.shape.partition("[")
      if kind not in dtypes:  # sanity_check's per-measure dicts and block names
        continue
      value = np.asarray(getattr(result, field))
      assert value.dtype == dtypes[kind], (name, field, value.dtype)
      assert dims.startswith("B") and value.shape[0] == 2, (name, field, value.shape)
      assert value.ndim == dims.count(",") + 1, (name, field, value.shape)


def test_unknown_metric():
  with pytest.raises(ValueError, match="unknown metric 'auc'; catalogued: completeness"):
    catalogue.info("auc")
