"""summary.md: per (model, mode), a Markdown table of method x metric, mean and 95 % CI.

From the long-format rows of `salijax.report.results_table` (one value per
image), each (model, mode), in the order the rows first name it, gets a
section (one per label mode, in order, where the rows hold several label
modes: "### resnet18 (finetune), least likely class"):

  ### resnet18 (finetune)
  dataset synthetic_shapes, split test, 64 images

  | method | Insertion AUC ↑ | Deletion AUC ↓ |
  |---|---:|---:|
  | gradcam | **0.612 [0.580, 0.644]** | 0.101 [0.090, 0.112] |
  | fake_cam (control) | 0.550 [0.520, 0.580] | 0.320 [0.300, 0.340] |

and a legend. A cell is the mean over images with its 95 % interval
(`metric_confidence_interval`: Student-t, Wilson score for hit-or-miss metrics
such as the pointing game), rounded so that the mean shows 3
significant digits (at most 6 decimals; 3 for a mean of 0) and the interval
the same decimals; a cell from one image shows the mean alone, a cell without
values "–". The best non-control method of each column is bold (every method
with the best mean exactly; by `METRICS` direction; none for a metric without
a direction). Controls (methods that explain nothing, e.g. "fake_cam" and
"random") come last, marked "(control)", and are never bold. A column whose
metric covers fewer images than the section (the sanity metrics: a subset)
says "(n = ...)". Rows of perturbed images (a `perturbation` other than
"none") are left out: `salijax.report.perturbation_markdown` reports them.
Rows without the `label_mode` or `perturbation` keys count as one label mode
and clean images.

    text = summary_markdown(read_results(report_dir), title="Benchmark")
"""

import math
from collections.abc import Mapping, Sequence
from typing import Any

from salijax.report import metric_catalogue
from salijax.report.confidence_interval import metric_confidence_interval

REQUIRED_KEYS = ("model", "mode", "dataset", "split", "image_id", "method", "metric", "value")
CLEAN = "none"  # the `perturbation` of the clean images
MAX_DECIMALS = 6
ARROWS = {True: " ↑", False: " ↓", None: ""}


def _check_names(value: Any, name: str) -> tuple[str, ...]:
  """A sequence of str (not one str) as a tuple, else TypeError naming the argument."""
  if isinstance(value, str) or not isinstance(value, Sequence) or not all(
      isinstance(item, str) for item in value):
    raise TypeError(f"{name} must be a sequence of str, got {value!r}")
  return tuple(value)


def cell_text(text: str) -> str:
  """`text` safe inside a Markdown table cell."""
  return text.replace("|", "\\|").replace("\n", " ")


def format_estimate(mean: float, low: float, high: float) -> str:
  """"mean [low, high]" with the decimals that give the mean 3 significant digits (module doc).

  A NaN mean gives "–"; NaN bounds (one value) give the mean alone.
  """
  if math.isnan(mean):
    return "–"
  magnitude = math.floor(math.log10(abs(mean))) if mean != 0 and math.isfinite(mean) else -1
  decimals = min(max(2 - magnitude, 0), MAX_DECIMALS)

  def number(x: float) -> str:
    return f"{round(x, decimals) + 0.0:.{decimals}f}"  # + 0.0: no "-0.000"

  if math.isnan(low) or math.isnan(high):
    return number(mean)
  return f"{number(mean)} [{number(low)}, {number(high)}]"


def best_methods(estimates: Mapping[str, float], higher_is_better: bool | None) -> set[str]:
  """The methods whose finite mean is the best one in this direction (none without one)."""
  finite = {method: mean for method, mean in estimates.items() if math.isfinite(mean)}
  if higher_is_better is None or not finite:
    return set()
  best = max(finite.values()) if higher_is_better else min(finite.values())
  return {method for method, mean in finite.items() if mean == best}


def label_mode_text(label_mode: str) -> str:
  """"least_likely" -> "least likely class"."""
  return f"{label_mode.replace('_', ' ')} class"


def _section(heading: str, rows: list[Mapping[str, Any]], controls: tuple[str, ...],
             metrics: tuple[str, ...] | None) -> str:
  """The Markdown section of one (model, mode[, label mode]) (module doc)."""
  values: dict[tuple[str, str], list[float]] = {}
  metric_images: dict[str, set[tuple[Any, Any, Any]]] = {}
  for row in rows:
    values.setdefault((row["method"], row["metric"]), []).append(float(row["value"]))
    image = (row["dataset"], row["split"], row["image_id"])
    metric_images.setdefault(row["metric"], set()).add(image)
  images = set().union(*metric_images.values())
  methods = list(dict.fromkeys(row["method"] for row in rows))
  shown_controls = [method for method in controls if method in methods]
  ranked = [method for method in methods if method not in controls]
  columns = list(metrics) if metrics is not None else metric_catalogue.ordered_metrics(
      row["metric"] for row in rows)

  estimates = {(method, metric): metric_confidence_interval(metric, column_values)
               for (method, metric), column_values in values.items()}
  nan_estimate = (math.nan, math.nan, math.nan)
  header, best = [], {}
  for metric in columns:
    info = metric_catalogue.metric_info(metric)
    covered = len(metric_images.get(metric, ()))
    count = f" (n = {covered})" if 0 < covered < len(images) else ""
    header.append(cell_text(info.title) + ARROWS[info.higher_is_better] + count)
    best[metric] = best_methods(
        {method: estimates.get((method, metric), nan_estimate)[0] for method in ranked},
        info.higher_is_better)

  lines = [heading, "",
           f"dataset {', '.join(dict.fromkeys(str(row['dataset']) for row in rows))}, split"
           f" {', '.join(dict.fromkeys(str(row['split']) for row in rows))}, {len(images)}"
           f" image{'' if len(images) == 1 else 's'}",
           "", "| method | " + " | ".join(header) + " |",
           "|---|" + "---:|" * len(columns)]
  single = False
  for method in ranked + shown_controls:
    cells = []
    for metric in columns:
      mean, low, high = estimates.get((method, metric), nan_estimate)
      text = format_estimate(mean, low, high)
      single = single or (not math.isnan(mean) and math.isnan(low))
      cells.append(f"**{text}**" if method in best[metric] else text)
    name = cell_text(method) + (" (control)" if method in controls else "")
    lines.append(f"| {name} | " + " | ".join(cells) + " |")

  directions = {metric_catalogue.metric_info(metric).higher_is_better for metric in columns}
  legend = ["↑ higher is better, ↓ lower is better"
            + ("; no arrow: no known direction" if None in directions else "") + ".",
            "Cells: mean over images [95 % CI, Student t; Wilson score for hit rates such as"
            " the pointing game]"
            + ("; a value without an interval comes from one image" if single else "")
            + "; – : no result.",
            "Bold: the best method of each column, controls excluded."]
  if shown_controls:
    legend.append("Controls (explain nothing, not ranked): " + ", ".join(
        cell_text(method) for method in shown_controls) + ".")
  return "\n".join(lines + [""] + legend) + "\n"


def summary_markdown(rows: Sequence[Mapping[str, Any]], *,
                     controls: Sequence[str] = ("fake_cam", "random"),
                     metrics: Sequence[str] | None = None, title: str = "") -> str:
  """The Markdown summary of long-format results (module doc).

  Args:
    rows: mappings with at least the keys `REQUIRED_KEYS` (results.csv rows).
    controls: the methods shown last as controls, in this order, never bold.
    metrics: the metric columns, in this order; None: every metric in the
      section, in `METRICS` order, then the others as they first appear.
    title: a "## title" heading above the sections; "" for none.

  Returns:
    The Markdown text, ending with a newline ("No results." for no rows).

  Raises:
    ValueError: a row without one of `REQUIRED_KEYS` (the row index is named).
    TypeError: a row that is not a mapping; controls or metrics not a
      sequence of str.
  """
  controls = _check_names(controls, "controls")
  metrics = None if metrics is None else _check_names(metrics, "metrics")
  sections: dict[tuple[str, str, str], list[Mapping[str, Any]]] = {}
  for row in checked_rows(rows):
    if str(row.get("perturbation", CLEAN)) != CLEAN:
      continue
    key = (str(row["model"]), str(row["mode"]), str(row.get("label_mode", "")))
    sections.setdefault(key, []).append(row)
  several = len({label_mode for _, _, label_mode in sections}) > 1
  texts = []
  for (model, mode, label_mode), section_rows in sections.items():
    heading = f"### {cell_text(model)} ({cell_text(mode)})"
    if several:
      heading += f", {cell_text(label_mode_text(label_mode))}"
    texts.append(_section(heading, section_rows, controls, metrics))
  return "\n".join(([f"## {title}\n"] if title else []) + (texts or ["No results.\n"]))


def checked_rows(rows: Sequence[Mapping[str, Any]]) -> Sequence[Mapping[str, Any]]:
  """`rows`, or TypeError (a row that is not a mapping) / ValueError (a row without one of
  `REQUIRED_KEYS`), naming the row index."""
  for index, row in enumerate(rows):
    if not isinstance(row, Mapping):
      raise TypeError(f"rows[{index}] must be a mapping, got {type(row).__name__}")
    missing = [key for key in REQUIRED_KEYS if key not in row]
    if missing:
      raise ValueError(f"rows[{index}] lacks the keys {missing} (needs {list(REQUIRED_KEYS)})")
  return rows
