"""report/index.html of the benchmark: the summary tables, the figures and a gallery of every map.

From data the report stage already has (`benchmark_page_html`):

  the models' accuracy (a `html_page.Table`),
  one sortable table of method x metric per (model, mode, label mode,
    perturbation) of the long-format rows: mean [95 % CI] as in summary.md
    (`summary_table`: the same rounding and intervals, the best non-control
    method bold, controls last and marked; "(n = k)" on a metric of fewer
    images, such as the sanity check's), sorted by the mean,
  the report's PNG figures, by their paths relative to the page,
  a gallery of every explained image x method (`MapView`: a small overlay
    PNG, embedded) with its metric values, filterable by model, method,
    label mode and perturbation.

    page = benchmark_page_html("salijax benchmark: shapes", rows, views,
                               figures=[("resnet18_scratch_curves.png", "curves")])
    atomic_files.write_text_atomic(report_dir / "index.html", page)
"""

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

from salijax.report import metric_catalogue
from salijax.report.confidence_interval import metric_confidence_interval
from salijax.report.html_page import (
    Cell,
    GalleryCard,
    Table,
    data_url,
    figure_html,
    gallery_html,
    navigation_html,
    page_html,
    section_html,
    table_html,
    text_html,
)
from salijax.report.summary_table import (
    ARROWS,
    best_methods,
    checked_rows,
    format_estimate,
    label_mode_text,
)

FACETS = ("model", "method", "label_mode", "perturbation")
CLEAN = "none"


@dataclasses.dataclass(frozen=True)
class MapView:
  """One explained image x method: the overlay PNG and the keys of its result rows."""

  model: str
  mode: str
  method: str
  label_mode: str
  perturbation: str
  image_id: int | str
  png: bytes  # the map over its image (`overlay_image.overlay_png`)
  caption: str = ""  # extra lines, e.g. "true: star / pred: star"


def run_text(model: str, mode: str) -> str:
  """"resnet18 (scratch)"."""
  return f"{model} ({mode})"


def _group_key(row: Mapping[str, Any]) -> tuple[str, str, str, str]:
  return (str(row["model"]), str(row["mode"]), str(row.get("label_mode", "")),
          str(row.get("perturbation", CLEAN)))


def _caption(key: tuple[str, str, str, str], images: int) -> str:
  model, mode, label_mode, perturbation = key
  parts = [run_text(model, mode)]
  if label_mode:
    parts.append(label_mode_text(label_mode))
  parts.append("clean images" if perturbation == CLEAN else f"perturbation {perturbation}")
  return ", ".join(parts) + f" ({images} image{'' if images == 1 else 's'})"


def summary_tables(rows: Sequence[Mapping[str, Any]],
                   controls: Sequence[str] = ("fake_cam", "random")) -> list[Table]:
  """One method x metric table per (model, mode, label mode, perturbation) of `rows` (module
  doc), in the order the rows first name them; ValueError/TypeError on bad rows
  (`summary_table.checked_rows`)."""
  groups: dict[tuple[str, str, str, str], list[Mapping[str, Any]]] = {}
  for row in checked_rows(rows):
    groups.setdefault(_group_key(row), []).append(row)
  tables = []
  for key, group in groups.items():
    values: dict[tuple[str, str], list[float]] = {}
    for row in group:
      values.setdefault((str(row["method"]), str(row["metric"])), []).append(float(row["value"]))
    methods = list(dict.fromkeys(str(row["method"]) for row in group))
    ranked = [m for m in methods if m not in controls] + [m for m in controls if m in methods]
    metrics = metric_catalogue.ordered_metrics(str(row["metric"]) for row in group)
    nan = (math.nan, math.nan, math.nan)
    estimates = {k: metric_confidence_interval(k[1], v) for k, v in values.items()}
    best = {metric: best_methods(
        {m: estimates.get((m, metric), nan)[0] for m in ranked if m not in controls},
        metric_catalogue.metric_info(metric).higher_is_better) for metric in metrics}
    images = len({row["image_id"] for row in group})
    covered = {metric: len({row["image_id"] for row in group if row["metric"] == metric})
               for metric in metrics}
    header = ["method"] + [metric_catalogue.metric_info(metric).title
                           + ARROWS[metric_catalogue.metric_info(metric).higher_is_better]
                           + (f" (n = {covered[metric]})" if covered[metric] < images else "")
                           for metric in metrics]
    table_rows = []
    for method in ranked:
      cells = [Cell(method + (" (control)" if method in controls else ""))]
      for metric in metrics:
        mean, low, high = estimates.get((method, metric), nan)
        cells.append(Cell(format_estimate(mean, low, high), mean, method in best[metric]))
      table_rows.append(cells)
    tables.append(Table(_caption(key, images), header, table_rows, notes=(
        "Cells: mean over images [95 % CI]; bold: the best method of the column, controls"
        " excluded; ↑ higher is better, ↓ lower is better. Click a header to sort.",)))
  return tables


def format_value(value: float) -> str:
  """A metric value with 3 significant digits ("–" for NaN)."""
  if math.isnan(value):
    return "–"
  return f"{value:.3g}"


def gallery_cards(rows: Sequence[Mapping[str, Any]], views: Sequence[MapView]
                  ) -> list[GalleryCard]:
  """A card per view, in order: its overlay, caption and the values of its result rows."""
  values: dict[tuple[str, ...], dict[str, float]] = {}
  for row in checked_rows(rows):
    key = (*_group_key(row), str(row["method"]), str(row["image_id"]))
    values.setdefault(key, {})[str(row["metric"])] = float(row["value"])
  cards = []
  for index, view in enumerate(views):
    if not isinstance(view, MapView):
      raise TypeError(f"views[{index}] must be a MapView, got {type(view).__name__}")
    key = (view.model, view.mode, view.label_mode, view.perturbation, view.method,
           str(view.image_id))
    metrics = values.get(key, {})
    shown = [(metric_catalogue.metric_info(name).title, format_value(metrics[name]))
             for name in metric_catalogue.ordered_metrics(metrics)]
    lines = [f"{view.method}: image {view.image_id}", run_text(view.model, view.mode),
             f"{label_mode_text(view.label_mode)}, " + (
                 "clean" if view.perturbation == CLEAN else view.perturbation)]
    if view.caption:
      lines.append(view.caption)
    cards.append(GalleryCard(data_url(view.png), "\n".join(lines), {
        "model": run_text(view.model, view.mode), "method": view.method,
        "label_mode": view.label_mode, "perturbation": view.perturbation}, shown))
  return cards


def benchmark_page_html(title: str, rows: Sequence[Mapping[str, Any]],
                        views: Sequence[MapView], *, intro: str = "",
                        accuracy: Table | None = None,
                        figures: Sequence[tuple[str, str]] = (),
                        controls: Sequence[str] = ("fake_cam", "random"),
                        colormap: str = "jet") -> str:
  """The whole page (module doc).

  Args:
    title: the page's title and heading.
    rows: the long-format result rows (`salijax.report.results_table`).
    views: every explained image x method, in the gallery's order.
    intro: a paragraph under the title ("" for none).
    accuracy: the models' table, or None.
    figures: (path relative to the page, caption) of each figure, in order.
    controls: the methods shown last as controls, never bold.
    colormap: the overlays' colormap, named in the gallery's note.

  Raises:
    ValueError/TypeError: bad rows (`summary_table.checked_rows`) or a view
      that is not a MapView.
  """
  sections: list[tuple[str, list[str]]] = []
  if accuracy is not None:
    sections.append(("Models", [table_html(accuracy)]))
  tables = summary_tables(rows, controls)
  sections.append(("Results", [table_html(t) for t in tables] or [text_html("No results.")]))
  if figures:
    sections.append(("Figures", [figure_html(src, caption) for src, caption in figures]))
  sections.append(("Maps", [
      text_html(f"Every explained image x method: the map (min-max normalised, {colormap}:"
                " low → high) over the image the method explained, with that map's metric"
                " values."),
      gallery_html(gallery_cards(rows, views), FACETS)]))
  parts = ([text_html(intro)] if intro else []) + [
      navigation_html([heading for heading, _ in sections])]
  parts += [section_html(heading, *content) for heading, content in sections]
  return page_html(title, parts)
