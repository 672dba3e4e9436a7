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
from every_metric import every_metric

from salijax import metrics
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
  results = every_metric(clf, images, maps, labels, region)
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


def test_every_metric_scores_an_image_the_same_in_any_batch():
  """An image's values do not depend on the images scored beside it: the random draws are
  the image's own (`per_image_draws`), so padding a batch for the devices or splitting a
  dataset over processes changes nothing. Batches of 2 and 3 run different convolution
  layouts: logits differ by a few float32 ulps, which differences of scores and
  correlations over a few hundred values amplify at most ~1e3-fold."""
  clf = tiny_classifiers.random_cnn(jax.random.key(0))
  images = jax.random.uniform(jax.random.key(1), (3, 16, 16, 3))
  maps = jax.random.uniform(jax.random.key(2), (3, 16, 16))
  labels = jnp.array([0, 1, 3], jnp.int32)
  region = jnp.zeros((3, 16, 16), bool).at[:, 4:9, 6:12].set(True).at[2, 0, 0].set(True)
  three = every_metric(clf, images, maps, labels, region)
  two = every_metric(clf, images[:2], maps[:2], labels[:2], region[:2])
  for name in catalogue.names():
    for field in catalogue.info(name).fields:
      for got, expected in zip(jax.tree.leaves(getattr(three[name], field)),
                               jax.tree.leaves(getattr(two[name], field)), strict=True):
        expected = np.asarray(expected)
        if expected.ndim == 0 or expected.shape[0] != 2:
          continue
        scale = float(np.abs(expected).max()) if expected.size else 0.0
        np.testing.assert_allclose(np.asarray(got)[:2], expected, rtol=1e-4,
                                   atol=1e-4 * scale + 1e-6, err_msg=f"{name}.{field}")
