"""summary.md's perturbation sections: how maps and metrics change on perturbed images.

From the long-format rows of `salijax.report.results_table`, the rows of a
perturbation p (`perturbation` other than "none") are paired with the rows of
the clean image ("none") of the same model, mode, label mode, image, method
and metric. Three kinds of tables, in this order:

  ### Predictions changed by the perturbations
  | run | rotate45 | fgsm0.03 |          % of the images whose predicted class
  | resnet18 (scratch) | 12.5 | 87.5 |   changed (metric prediction_flipped)

  ### resnet18 (scratch), ground truth class: robustness of the maps
  | method | rotate45 | fgsm0.03 |       mean Spearman / mean SSIM of the map of
  | gradcam | 0.812 / 0.640 | ... |      p(I) against p(map of I) (1: the map
                                         moved with the image)

  ### resnet18 (scratch), ground truth class, rotate45: change vs the clean images
  | method | Robustness: Spearman ↑ | Robustness: SSIM ↑ | Δ Insertion AUC | ... |

one overview per (model, mode, label mode) and one change table per
(model, mode, label mode, perturbation), in the order the rows first name
them. A change table shows the robustness metrics as they are (mean [95 % CI],
the best non-control method bold) and every other metric as Δ = the value
on p(I) minus the value on I, per image, then mean [95 % CI] over the images
that have both (no bold: the sign of a good change depends on the metric).
Controls come last, marked "(control)".

    text = perturbation_markdown(read_results(report_dir))   # "" without perturbed rows
"""

import math
from collections.abc import Mapping, Sequence
from typing import Any

from salijax.report import metric_catalogue
from salijax.report.confidence_interval import mean_confidence_interval
from salijax.report.summary_table import (
    ARROWS,
    CLEAN,
    best_methods,
    cell_text,
    checked_rows,
    format_estimate,
    label_mode_text,
)

ROBUSTNESS = ("robustness_spearman", "robustness_ssim")
FLIPPED = "prediction_flipped"


def _run_text(model: str, mode: str) -> str:
  return f"{cell_text(model)} ({cell_text(mode)})"


def _group_text(model: str, mode: str, label_mode: str) -> str:
  text = _run_text(model, mode)
  return f"{text}, {cell_text(label_mode_text(label_mode))}" if label_mode else text


def _methods(rows: Sequence[Mapping[str, Any]], controls: tuple[str, ...]) -> list[str]:
  """The methods of `rows`, as they first appear, then the controls in their order."""
  methods = list(dict.fromkeys(str(row["method"]) for row in rows))
  return ([m for m in methods if m not in controls] + [m for m in controls if m in methods])


def _method_text(method: str, controls: tuple[str, ...]) -> str:
  return cell_text(method) + (" (control)" if method in controls else "")


def _flip_table(perturbed: Sequence[Mapping[str, Any]]) -> str:
  """% of images whose prediction changed, per run and perturbation."""
  flips: dict[tuple[str, str], dict[str, dict[Any, float]]] = {}
  for row in perturbed:
    if row["metric"] == FLIPPED:
      image = (row["dataset"], row["split"], row["image_id"])
      per_run = flips.setdefault((str(row["model"]), str(row["mode"])), {})
      per_run.setdefault(str(row["perturbation"]), {})[image] = float(row["value"])
  if not flips:
    return ""
  names = list(dict.fromkeys(p for per_run in flips.values() for p in per_run))
  lines = ["### Predictions changed by the perturbations", "",
           "% of the images whose predicted class differs from the clean image's.", "",
           "| run | " + " | ".join(cell_text(p) for p in names) + " |",
           "|---|" + "---:|" * len(names)]
  for (model, mode), per_run in flips.items():
    cells = []
    for name in names:
      values = [v for v in per_run.get(name, {}).values() if not math.isnan(v)]
      cells.append(f"{100 * sum(values) / len(values):.1f}" if values else "–")
    lines.append(f"| {_run_text(model, mode)} | " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def _mean(values: list[float]) -> float:
  finite = [v for v in values if not math.isnan(v)]
  return sum(finite) / len(finite) if finite else math.nan


def _overview(heading: str, values: Mapping[tuple[str, str, str], list[float]],
              names: list[str], methods: list[str], controls: tuple[str, ...]) -> str:
  """Mean Spearman / mean SSIM per method and perturbation."""
  lines = [heading, "",
           "Mean Spearman / mean SSIM of the map of the perturbed image against the perturbed "
           "map of the clean image, over the pixels inside the image (1: the map moved with "
           "the image).", "",
           "| method | " + " | ".join(cell_text(p) for p in names) + " |",
           "|---|" + "---:|" * len(names)]
  for method in methods:
    cells = []
    for name in names:
      means = [_mean(values.get((name, method, metric), [])) for metric in ROBUSTNESS]
      cells.append("–" if all(math.isnan(m) for m in means) else " / ".join(
          "–" if math.isnan(m) else format_estimate(m, math.nan, math.nan) for m in means))
    lines.append(f"| {_method_text(method, controls)} | " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def _change_table(heading: str, values: Mapping[tuple[str, str, str], list[float]], name: str,
                  methods: list[str], controls: tuple[str, ...], images: int) -> str:
  """The robustness metrics and the per-image changes of the others, for one perturbation."""
  metrics = metric_catalogue.ordered_metrics(
      metric for (p, _, metric) in values if p == name and metric != FLIPPED)
  metrics = [m for m in ROBUSTNESS if m in metrics] + [m for m in metrics if m not in ROBUSTNESS]
  ranked = [m for m in methods if m not in controls]
  estimates = {(method, metric): mean_confidence_interval(values.get((name, method, metric), []))
               for method in methods for metric in metrics}
  header, best = [], {}
  for metric in metrics:
    info = metric_catalogue.metric_info(metric)
    if metric in ROBUSTNESS:
      header.append(cell_text(info.title) + ARROWS[info.higher_is_better])
      best[metric] = best_methods({m: estimates[m, metric][0] for m in ranked},
                                  info.higher_is_better)
    else:
      header.append("Δ " + cell_text(info.title))
      best[metric] = set()
  lines = [heading, "",
           f"{images} image{'' if images == 1 else 's'}; Δ = the metric on the perturbed image "
           "minus the metric on the clean image, per image; mean [95 % CI, Student t].", "",
           "| method | " + " | ".join(header) + " |", "|---|" + "---:|" * len(metrics)]
  for method in methods:
    cells = []
    for metric in metrics:
      text = format_estimate(*estimates[method, metric])
      cells.append(f"**{text}**" if method in best[metric] else text)
    lines.append(f"| {_method_text(method, controls)} | " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def perturbation_markdown(rows: Sequence[Mapping[str, Any]], *,
                          controls: Sequence[str] = ("fake_cam", "random")) -> str:
  """The perturbation sections of long-format results (module doc).

  Args:
    rows: mappings with the keys of `summary_table.REQUIRED_KEYS` and
      "perturbation" (and "label_mode", "" when absent), e.g. results.csv rows.
    controls: the methods shown last as controls, never bold.

  Returns:
    The Markdown text, ending with a newline; "" when no row is perturbed.

  Raises:
    ValueError: a row without one of the keys (the row index is named).
    TypeError: a row that is not a mapping; controls not a sequence of str.
  """
  if isinstance(controls, str) or not isinstance(controls, Sequence) or not all(
      isinstance(c, str) for c in controls):
    raise TypeError(f"controls must be a sequence of str, got {controls!r}")
  controls = tuple(controls)
  rows = checked_rows(rows)
  for index, row in enumerate(rows):
    if "perturbation" not in row:
      raise ValueError(f"rows[{index}] lacks the key 'perturbation'")

  def key(row: Mapping[str, Any]) -> tuple[str, str, str]:
    return str(row["model"]), str(row["mode"]), str(row.get("label_mode", ""))

  clean = {(*key(row), row["dataset"], row["split"], row["image_id"], row["method"],
            row["metric"]): float(row["value"]) for row in rows if row["perturbation"] == CLEAN}
  perturbed = [row for row in rows if row["perturbation"] != CLEAN]
  groups: dict[tuple[str, str, str], dict[tuple[str, str, str], list[float]]] = {}
  images: dict[tuple[str, str, str, str], set[Any]] = {}
  for row in perturbed:
    name, method, metric = str(row["perturbation"]), str(row["method"]), str(row["metric"])
    value = float(row["value"])
    if metric not in ROBUSTNESS and metric != FLIPPED:
      before = clean.get((*key(row), row["dataset"], row["split"], row["image_id"],
                          row["method"], row["metric"]))
      if before is None:
        continue  # nothing to compare with
      value -= before
    groups.setdefault(key(row), {}).setdefault((name, method, metric), []).append(value)
    images.setdefault((*key(row), name), set()).add(
        (row["dataset"], row["split"], row["image_id"]))
  if not perturbed:
    return ""
  texts = [_flip_table(perturbed)]
  for group, values in groups.items():
    methods = _methods([row for row in perturbed if key(row) == group], controls)
    names = list(dict.fromkeys(name for name, _, _ in values))
    texts.append(_overview(f"### {_group_text(*group)}: robustness of the maps", values, names,
                           methods, controls))
    texts += [_change_table(f"### {_group_text(*group)}, {cell_text(name)}: change vs the clean "
                            "images", values, name, methods, controls,
                            len(images[(*group, name)])) for name in names]
  if controls and any(c in {str(row["method"]) for row in perturbed} for c in controls):
    texts.append("Controls (explain nothing, not ranked): " + ", ".join(
        cell_text(c) for c in controls if c in {str(row["method"]) for row in perturbed}) + ".\n")
  return "\n".join(text for text in texts if text)
