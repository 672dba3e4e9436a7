"""Tests of salijax.report.benchmark_page: summary tables and the gallery of every map."""

import html
import itertools
import re

import numpy as np
import pytest

from salijax.report import COLUMNS, benchmark_page, metric_info
from salijax.report.benchmark_page import MapView, benchmark_page_html

RUNS = (("resnet18", "scratch"), ("vgg11", "finetune"))
METHODS = ("gradcam", "rise", "random")  # random: a control
LABEL_MODES = ("ground_truth", "least_likely")
PERTURBATIONS = ("none", "rotate45")
IMAGES = (3, 7, 11)
METRICS = ("insertion_auc", "deletion_auc")


def make_rows():
  rng = np.random.default_rng(0)
  rows = []
  for (model, mode), label_mode, perturbation, method, image, metric in itertools.product(
      RUNS, LABEL_MODES, PERTURBATIONS, METHODS, IMAGES, METRICS):
    rows.append(dict(zip(COLUMNS, (
        model, mode, "shapes", "test", image, 1, 1, label_mode, 1, perturbation, method, metric,
        float(rng.uniform()), 0), strict=True)))
  return rows


def make_views():
  return [MapView(model, mode, method, label_mode, perturbation, image, bytes([image]),
                  caption=f"<true {image}>")
          for (model, mode), label_mode, perturbation, image, method in itertools.product(
              RUNS, LABEL_MODES, PERTURBATIONS, IMAGES, METHODS)]


def test_one_table_per_run_label_mode_and_perturbation_with_the_means():
  rows = make_rows()
  tables = benchmark_page.summary_tables(rows, controls=("random",))
  assert len(tables) == len(RUNS) * len(LABEL_MODES) * len(PERTURBATIONS)
  for table, ((model, mode), label_mode, perturbation) in zip(
      tables, itertools.product(RUNS, LABEL_MODES, PERTURBATIONS), strict=True):
    assert table.caption.startswith(f"{model} ({mode})")
    assert f"({len(IMAGES)} images)" in table.caption
    assert [row[0].text for row in table.rows] == ["gradcam", "rise", "random (control)"]
    for column, metric in enumerate(METRICS, start=1):
      means = {}
      for row, method in zip(table.rows, METHODS, strict=True):
        values = [r["value"] for r in rows if (r["model"], r["label_mode"], r["perturbation"],
                                               r["method"], r["metric"]) == (
                                                   model, label_mode, perturbation, method,
                                                   metric)]
        means[method] = np.mean(values)
        assert row[column].sort_key == pytest.approx(means[method], rel=1e-12)
      better = max if metric == "insertion_auc" else min
      best = better(("gradcam", "rise"), key=means.get)
      assert [row[column].bold for row in table.rows] == [m == best for m in METHODS]


def test_a_metric_of_fewer_images_says_how_many():
  rows = make_rows()
  rows.append({**rows[0], "metric": "sanity_ssim", "value": 0.5})
  (table, *_) = benchmark_page.summary_tables(rows)
  assert table.header[1:3] == ["Insertion AUC ↑", "Deletion AUC ↓"]  # every image: no n
  assert table.header[3].startswith(metric_info("sanity_ssim").title)
  assert table.header[3].endswith(" (n = 1)")


def test_the_gallery_shows_every_image_and_method_with_its_values():
  rows, views = make_rows(), make_views()
  page = benchmark_page_html("Bench <1>", rows, views, controls=("random",),
                             figures=[("training.png", "training")])
  cards = re.findall(r'<figure class="card" data-model="([^"]*)" data-method="([^"]*)"'
                     r' data-label_mode="([^"]*)" data-perturbation="([^"]*)">(.*?)</figure>',
                     page, re.S)
  assert len(cards) == len(views)
  for (model, method, label_mode, perturbation, body), view in zip(cards, views, strict=True):
    assert (html.unescape(model), method, label_mode, perturbation) == (
        f"{view.model} ({view.mode})", view.method, view.label_mode, view.perturbation)
    assert f"image {view.image_id}" in body and "&lt;true" in body
    shown = dict(re.findall(r'<tr><td>([^<]*)</td><td class="number">([^<]*)</td></tr>', body))
    for metric, title in (("insertion_auc", "Insertion AUC"), ("deletion_auc", "Deletion AUC")):
      (value,) = [r["value"] for r in rows if (
          r["model"], r["mode"], r["method"], r["label_mode"], r["perturbation"], r["image_id"],
          r["metric"]) == (view.model, view.mode, view.method, view.label_mode,
                           view.perturbation, view.image_id, metric)]
      assert float(shown[title]) == pytest.approx(value, rel=5e-3)  # 3 significant digits
  options = {facet: re.findall(r'<option value="([^"]*)">', re.search(
      rf'<select data-facet="{facet}">(.*?)</select>', page).group(1))[1:]
      for facet in benchmark_page.FACETS}
  assert options == {"model": ["resnet18 (scratch)", "vgg11 (finetune)"],
                     "method": list(METHODS), "label_mode": list(LABEL_MODES),
                     "perturbation": list(PERTURBATIONS)}
  assert '<img src="training.png"' in page and "Bench &lt;1&gt;" in page


def test_a_view_without_rows_shows_no_values_and_bad_inputs_are_refused():
  view = MapView("m", "scratch", "gradcam", "ground_truth", "none", 0, b"png")
  (card,) = benchmark_page.gallery_cards([], [view])
  assert card.values == [] and card.facets["method"] == "gradcam"
  with pytest.raises(TypeError, match="views\\[0\\]"):
    benchmark_page.gallery_cards([], ["png"])
  with pytest.raises(ValueError, match="rows\\[0\\] lacks"):
    benchmark_page.summary_tables([{"model": "m"}])
