"""Tests of salijax.report.perturbation_table."""

import math

import pytest

from salijax.report.confidence_interval import mean_confidence_interval
from salijax.report.perturbation_table import perturbation_markdown
from salijax.report.summary_table import format_estimate


def row(method, metric, value, image, *, perturbation="none", label_mode="ground_truth",
        model="resnet18"):
  return {"model": model, "mode": "scratch", "dataset": "shapes", "split": "test",
          "image_id": image, "label": 0, "predicted": 0, "label_mode": label_mode,
          "explained": 0, "perturbation": perturbation, "method": method, "metric": metric,
          "value": value, "seed": 0}


CLEAN = {("rise", 0): 0.5, ("rise", 1): 0.7, ("rise", 2): 0.2,
         ("random", 0): 0.4, ("random", 1): 0.1, ("random", 2): 0.3}
ROTATED = {("rise", 0): 0.45, ("rise", 1): 0.5, ("rise", 2): 0.3,
           ("random", 0): 0.4, ("random", 1): 0.2, ("random", 2): 0.1}


def make_rows():
  rows = [row(m, "insertion_auc", v, i) for (m, i), v in CLEAN.items()]
  rows += [row(m, "insertion_auc", v, i, perturbation="rotate45") for (m, i), v in ROTATED.items()]
  for (method, image), spearman in {("rise", 0): 0.8, ("rise", 1): 0.6, ("rise", 2): 0.7,
                                    ("random", 0): 0.1, ("random", 1): 0.0,
                                    ("random", 2): -0.1}.items():
    rows.append(row(method, "robustness_spearman", spearman, image, perturbation="rotate45"))
    rows.append(row(method, "robustness_ssim", spearman / 2, image, perturbation="rotate45"))
    rows.append(row(method, "prediction_flipped", float(image == 0), image,
                    perturbation="rotate45"))
  return rows


def table(text, heading):
  section = text.split(heading + "\n", 1)[1].split("\n### ", 1)[0]
  lines = [line for line in section.splitlines() if line.startswith("|")]
  def cells(line):
    return [cell.strip() for cell in line.strip("|").split(" | ")]
  return cells(lines[0])[1:], {r[0]: r[1:] for r in map(cells, lines[2:])}


def test_changes_are_per_image_differences_with_their_interval():
  text = perturbation_markdown(make_rows(), controls=("random",))
  header, body = table(text, "### resnet18 (scratch), ground truth class, rotate45: change vs"
                       " the clean images")
  assert header == ["Robustness: Spearman ↑", "Robustness: SSIM ↑", "Δ Insertion AUC"]
  assert list(body) == ["rise", "random (control)"]
  deltas = [ROTATED["rise", i] - CLEAN["rise", i] for i in range(3)]
  assert body["rise"][2] == format_estimate(*mean_confidence_interval(deltas))
  assert body["rise"][0] == "**" + format_estimate(*mean_confidence_interval([0.8, 0.6, 0.7])) + (
      "**")
  assert not body["random (control)"][0].startswith("**")  # controls are never bold
  assert "3 images; Δ = the metric on the perturbed image minus" in text


def test_overview_and_flip_table():
  text = perturbation_markdown(make_rows(), controls=("random",))
  header, body = table(text, "### resnet18 (scratch), ground truth class: robustness of the maps")
  assert header == ["rotate45"]
  assert body["rise"] == ["0.700 / 0.350"]
  header, body = table(text, "### Predictions changed by the perturbations")
  assert header == ["rotate45"] and body["resnet18 (scratch)"] == ["33.3"]  # 1 of 3 images
  assert "Controls (explain nothing, not ranked): random." in text


def test_a_change_needs_the_clean_value_of_the_same_label_mode():
  rows = make_rows()
  rows += [row("rise", "insertion_auc", 0.9, i, perturbation="rotate45",
               label_mode="least_likely") for i in range(3)]
  text = perturbation_markdown(rows)
  assert "least likely" not in text  # no clean least-likely rows: nothing to compare with
  assert text == perturbation_markdown(make_rows())


def test_no_perturbed_rows_give_no_text():
  assert perturbation_markdown([r for r in make_rows() if r["perturbation"] == "none"]) == ""
  assert perturbation_markdown([]) == ""


def test_nan_values_are_skipped():
  rows = make_rows()
  for r in rows:
    if r["method"] == "rise" and r["metric"] == "robustness_spearman" and r["image_id"] == 0:
      r["value"] = math.nan
  _, body = table(perturbation_markdown(rows), "### resnet18 (scratch), ground truth class:"
                  " robustness of the maps")
  assert body["rise"] == ["0.650 / 0.350"]


def test_bad_inputs_are_rejected():
  with pytest.raises(TypeError, match="controls"):
    perturbation_markdown(make_rows(), controls="random")
  rows = make_rows()
  del rows[2]["perturbation"]
  with pytest.raises(ValueError, match=r"rows\[2\].*perturbation"):
    perturbation_markdown(rows)
  rows = make_rows()
  del rows[1]["value"]
  with pytest.raises(ValueError, match=r"rows\[1\] lacks the keys \['value'\]"):
    perturbation_markdown(rows)
