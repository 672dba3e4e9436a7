"""Tests of salijax.report.metric_catalogue."""

import pathlib
import re

import pytest

from salijax.metrics import SIMILARITIES, Complexity, ExplanationRobustness, catalogue
from salijax.report.metric_catalogue import METRICS, MetricInfo, metric_info, ordered_metrics

# The benchmark's metrics in display order with their directions (the report's specification).
EXPECTED = [("insertion_auc", True), ("deletion_auc", False), ("average_drop", False),
            ("increase_in_confidence", True), ("average_gain", True), ("pointing_game", True),
            ("energy_pointing_game", True), ("sparseness", True), ("entropy", False),
            ("mass_fraction_90", False), ("sanity_spearman", False),
            ("sanity_spearman_abs", False), ("sanity_ssim", False), ("sanity_hog", False),
            ("robustness_spearman", True), ("robustness_ssim", True), ("prediction_flipped", None)]


def test_the_benchmark_metrics_in_order_with_their_directions():
  assert [(name, info.higher_is_better) for name, info in METRICS.items()][:len(EXPECTED)] \
      == EXPECTED
  for name, info in METRICS.items():
    assert isinstance(info, MetricInfo) and info.name == name
    assert info.title and info.description
    assert "|" not in info.title  # titles go into Markdown table headers unescaped
  assert len({info.title for info in METRICS.values()}) == len(METRICS)


def test_covers_the_metric_modules_names():
  for field in Complexity._fields:
    assert field in METRICS
  for measure in SIMILARITIES:
    assert f"sanity_{measure}" in METRICS
  for field in ExplanationRobustness._fields:
    assert f"robustness_{field}" in METRICS


def test_each_metric_reads_its_library_field():
  for name, info in METRICS.items():
    if name == "prediction_flipped":  # the model's, not a map's
      assert info.source is None
      continue
    metric, field = info.source
    assert info.higher_is_better == catalogue.info(metric).higher_is_better(field), name
  # Hit-or-miss: the boolean fields (increase, hit), and the flips.
  assert {name: info.hit_value for name, info in METRICS.items() if info.hit_value} == {
      "increase_in_confidence": 100.0, "pointing_game": 1.0, "prediction_flipped": 1.0}


def test_the_docs_directions_table_agrees():
  docs = pathlib.Path(__file__).resolve().parents[2] / "docs" / "metrics.md"
  table = docs.read_text().split("| metric | better | section |\n|---|---|---|\n")[1]
  seen = set()
  for row in table.split("\n\n")[0].splitlines():
    names_cell, better, _ = row.strip("|").split("|")
    for name in re.findall(r"`(\w+)`", names_cell):
      assert METRICS[name].higher_is_better == (better.split()[0] == "higher"), name
      seen.add(name)
  assert seen == set(METRICS) - {"prediction_flipped"}


def test_unknown_metrics_have_no_direction():
  info = metric_info("future_metric")
  assert info == MetricInfo("future_metric", "future_metric", None, "")
  assert metric_info("deletion_auc") is METRICS["deletion_auc"]


def test_ordered_metrics_catalogue_first_then_others_as_they_come():
  names = ["zeta", "entropy", "insertion_auc", "alpha", "entropy", "zeta"]
  assert ordered_metrics(names) == ["insertion_auc", "entropy", "zeta", "alpha"]
  assert ordered_metrics(iter(["sanity_hog", "deletion_auc"])) == ["deletion_auc", "sanity_hog"]


def test_metric_info_is_frozen():
  with pytest.raises(AttributeError):
    METRICS["entropy"].higher_is_better = True


def test_fields_of_catalogued_metrics_take_their_direction():
  """The benchmark's extra metrics (config.metrics) report "<metric>.<field>"."""
  auc = metric_info("localisation.auc")
  assert (auc.title, auc.higher_is_better, auc.source, auc.hit_value) == (
      "localisation.auc", True, ("localisation", "auc"), None)
  assert metric_info("complexity.entropy").higher_is_better is False
  assert metric_info("pointing_game.hit").hit_value == 1.0  # bool[B]: hit-or-miss, 0/1
  assert metric_info("pointing_game.num_maxima").higher_is_better is None
  for name in ("localisation.nonexistent", "nonexistent.auc"):
    assert metric_info(name) == MetricInfo(name, name, None, "")
  assert ordered_metrics(["localisation.auc", "entropy"]) == ["entropy", "localisation.auc"]
