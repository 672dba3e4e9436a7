"""Tests of salijax.report.summary_table."""

import math
import re

import pytest

from salijax.report.confidence_interval import mean_confidence_interval, rate_confidence_interval
from salijax.report.summary_table import format_estimate, summary_markdown

OFFSETS = (-0.03, 0.01, 0.02)  # per-image deviations, mean 0: a method's mean is its `mean`


def rows_of(model, mode, means, *, images=3, dataset="shapes", split="test"):
  """Long-format rows: means[(method, metric)] = the mean over `images` images."""
  rows = []
  for (method, metric), mean in means.items():
    for image in range(images):
      rows.append({"model": model, "mode": mode, "dataset": dataset, "split": split,
                   "image_id": image, "label": 0, "predicted": 0, "method": method,
                   "metric": metric, "value": mean + OFFSETS[image % 3], "seed": 0})
  return rows


MEANS = {
    ("gradcam", "insertion_auc"): 0.60, ("gradcam", "deletion_auc"): 0.30,
    ("gradcam", "mine"): 5.0,
    ("rise", "insertion_auc"): 0.70, ("rise", "deletion_auc"): 0.20, ("rise", "mine"): 9.0,
    ("lime", "insertion_auc"): 0.50, ("lime", "mine"): 1.0,  # no deletion_auc
    # The controls score best on both columns: they must still never be bold.
    ("random", "insertion_auc"): 0.95, ("random", "deletion_auc"): 0.01,
    ("fake_cam", "insertion_auc"): 0.90, ("fake_cam", "deletion_auc"): 0.05,
}


def table(text, heading):
  """The Markdown table under `heading`: (header cells, {row name: cells})."""
  section = text.split(heading + "\n", 1)[1].split("\n### ", 1)[0]
  lines = [line for line in section.splitlines() if line.startswith("|")]
  def cells(line):
    return [cell.strip() for cell in line.strip("|").split(" | ")]
  header, body = cells(lines[0]), [cells(line) for line in lines[2:]]
  return header[1:], {row[0]: row[1:] for row in body}


def numbers(cell):
  return [float(x) for x in re.findall(r"-?\d+\.\d+|-?\d+", cell.strip("*"))]


def test_bold_marks_the_best_non_control_method_in_each_direction():
  text = summary_markdown(rows_of("resnet18", "scratch", MEANS))
  header, body = table(text, "### resnet18 (scratch)")
  assert header == ["Insertion AUC ↑", "Deletion AUC ↓", "mine"]
  bold = {(method, header[i]) for method, cells in body.items()
          for i, cell in enumerate(cells) if cell.startswith("**")}
  assert bold == {("rise", "Insertion AUC ↑"), ("rise", "Deletion AUC ↓")}


def test_controls_come_last_in_the_given_order():
  text = summary_markdown(rows_of("resnet18", "scratch", MEANS))
  _, body = table(text, "### resnet18 (scratch)")
  assert list(body) == ["gradcam", "rise", "lime", "fake_cam (control)", "random (control)"]
  assert "Controls (explain nothing, not ranked): fake_cam, random." in text
  text = summary_markdown(rows_of("resnet18", "scratch", MEANS), controls=("lime",))
  _, body = table(text, "### resnet18 (scratch)")
  assert list(body) == ["gradcam", "rise", "random", "fake_cam", "lime (control)"]
  assert body["random"][0].startswith("**")  # no longer a control: the best insertion


def test_cells_are_the_mean_and_confidence_interval():
  rows = rows_of("resnet18", "scratch", MEANS)
  _, body = table(summary_markdown(rows), "### resnet18 (scratch)")
  for method, name in (("gradcam", "gradcam"), ("random", "random (control)")):
    values = [row["value"] for row in rows
              if row["method"] == method and row["metric"] == "insertion_auc"]
    shown = numbers(body[name][0])
    decimals = len(body[name][0].strip("*").split(" ")[0].split(".")[1])
    assert decimals == 3  # 3 significant digits of a mean in [0.1, 1)
    want = mean_confidence_interval(values)
    assert len(shown) == 3
    for got, expected in zip(shown, want, strict=True):
      assert abs(got - expected) <= 0.5 * 10 ** -decimals + 1e-12


def test_missing_cells_show_a_dash():
  _, body = table(summary_markdown(rows_of("m", "scratch", MEANS)), "### m (scratch)")
  assert body["lime"][1] == "–"
  assert body["fake_cam (control)"][2] == "–"


def test_sections_per_model_and_mode_in_order_of_appearance():
  rows = (rows_of("vgg11", "finetune", {("rise", "entropy"): 4.0}, images=2, split="val")
          + rows_of("resnet18", "scratch", MEANS)
          + rows_of("vgg11", "finetune", {("rise", "pointing_game"): 0.5}, images=2, split="val"))
  text = summary_markdown(rows, title="Benchmark")
  assert text.startswith("## Benchmark\n")
  headings = re.findall(r"^### .*$", text, flags=re.MULTILINE)
  assert headings == ["### vgg11 (finetune)", "### resnet18 (scratch)"]
  assert "dataset shapes, split val, 2 images" in text
  assert "dataset shapes, split test, 3 images" in text
  header, body = table(text, "### vgg11 (finetune)")
  assert header == ["Pointing game ↑", "Entropy (nats) ↓"]  # catalogue order
  assert list(body) == ["rise"]


def test_one_section_per_label_mode_and_no_perturbed_rows():
  rows = []
  cases = [("ground_truth", "none", 0.6), ("least_likely", "none", 0.2),
           ("ground_truth", "rotate45", 0.9)]
  for label_mode, perturbation, mean in cases:
    for row in rows_of("m", "scratch", {("rise", "insertion_auc"): mean}):
      rows.append({**row, "label_mode": label_mode, "perturbation": perturbation})
  text = summary_markdown(rows)
  headings = re.findall(r"^### .*$", text, flags=re.MULTILINE)
  assert headings == ["### m (scratch), ground truth class", "### m (scratch), least likely class"]
  _, body = table(text, "### m (scratch), ground truth class")
  assert numbers(body["rise"][0])[0] == pytest.approx(0.6)  # the rotated rows are left out
  _, body = table(text, "### m (scratch), least likely class")
  assert numbers(body["rise"][0])[0] == pytest.approx(0.2)
  one_mode = [row for row in rows if row["label_mode"] == "ground_truth"]
  assert re.findall(r"^### .*$", summary_markdown(one_mode), flags=re.MULTILINE) == [
      "### m (scratch)"]


def test_explicit_metrics_and_subset_columns():
  rows = rows_of("m", "scratch", MEANS) + rows_of("m", "scratch", {("rise", "sanity_ssim"): 0.1},
                                                   images=2)
  text = summary_markdown(rows, metrics=["sanity_ssim", "absent_metric", "deletion_auc"])
  header, body = table(text, "### m (scratch)")
  assert header == ["Sanity: SSIM ↓ (n = 2)", "absent_metric", "Deletion AUC ↓"]
  assert [cells[1] for cells in body.values()] == ["–"] * 5
  assert body["rise"][0].startswith("**")


def test_hit_rates_get_wilson_intervals():
  rows = rows_of("m", "scratch", {("rise", "insertion_auc"): 0.5})
  rows += [{**rows[0], "image_id": image, "metric": "pointing_game", "value": hit}
           for image, hit in enumerate([1.0, 1.0, 0.0, 1.0])]
  _, body = table(summary_markdown(rows), "### m (scratch)")
  mean, low, high = rate_confidence_interval([1.0, 1.0, 0.0, 1.0])
  assert body["rise"][1] == "**" + format_estimate(mean, low, high) + "**"
  assert 0.0 < low < high < 1.0


def test_legend():
  text = summary_markdown(rows_of("m", "scratch", MEANS))
  assert "95 % CI, Student t; Wilson score for hit rates" in text
  assert "↑ higher is better, ↓ lower is better; no arrow: no known direction." in text
  assert "one image" not in text
  one = summary_markdown(rows_of("m", "scratch", {("rise", "entropy"): 2.0}, images=1))
  _, body = table(one, "### m (scratch)")
  assert body["rise"] == ["**1.97**"]  # one image: 2.0 + OFFSETS[0]
  assert "a value without an interval comes from one image" in one


def test_ties_are_all_bold_and_nan_values_are_skipped():
  rows = rows_of("m", "scratch", {("a", "entropy"): 1.0, ("b", "entropy"): 1.0,
                                  ("c", "entropy"): 3.0, ("d", "entropy"): math.nan})
  _, body = table(summary_markdown(rows), "### m (scratch)")
  assert [cells[0].startswith("**") for cells in body.values()] == [True, True, False, False]
  assert body["d"] == ["–"]


def test_markdown_special_characters_are_escaped():
  text = summary_markdown(rows_of("m", "scratch", {("a|b", "entropy"): 1.0}))
  assert "| a\\|b |" in text


def test_no_rows():
  assert summary_markdown([]) == "No results.\n"
  assert summary_markdown([], title="T") == "## T\n\nNo results.\n"


@pytest.mark.parametrize("estimate, text", [
    ((0.6123, 0.58, 0.6441), "0.612 [0.580, 0.644]"),
    ((45.123, 40.2, 50.07), "45.1 [40.2, 50.1]"),
    ((0.01234, -0.00004, 0.0251), "0.0123 [0.0000, 0.0251]"),
    ((1234.4, 1000.0, 1468.6), "1234 [1000, 1469]"),
    ((0.0, -0.01, 0.01), "0.000 [-0.010, 0.010]"),
    ((1e-9, 0.0, 2e-9), "0.000000 [0.000000, 0.000000]"),
    ((0.25, math.nan, math.nan), "0.250"),
    ((math.nan, math.nan, math.nan), "–"),
])
def test_format_estimate(estimate, text):
  assert format_estimate(*estimate) == text


def test_bad_inputs_are_rejected():
  rows = rows_of("m", "scratch", MEANS)
  with pytest.raises(TypeError, match="controls"):
    summary_markdown(rows, controls="random")
  with pytest.raises(TypeError, match="metrics"):
    summary_markdown(rows, metrics=[1, 2])
  del rows[4]["value"]
  with pytest.raises(ValueError, match=r"rows\[4\] lacks the keys \['value'\]"):
    summary_markdown(rows)
  with pytest.raises(TypeError, match=r"rows\[0\] must be a mapping"):
    summary_markdown([("m", "scratch")])
