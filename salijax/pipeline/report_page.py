"""report/index.html: the benchmark's results as one HTML page (`salijax.report.benchmark_page`).

The page shows the accuracy of the runs, the summary tables of the result
rows, the report's figures (the PNG files beside it, by relative path) and a
gallery of every explained image x method x label mode x perturbation of
every run: the map over the image it explains (the clean image or the
perturb stage's perturbed image), embedded as a small PNG
(`salijax.report.overlay_image`), with that map's metric values. It opens
from disk in a browser: no server, no network.
"""

import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

from salijax import atomic_files, perturbations
from salijax.pipeline import batch_units, stage_helpers
from salijax.pipeline.benchmark_config import (
    label_modes,
    method_names,
    names_list,
    perturbation_names,
)
from salijax.pipeline.stage_context import Context
from salijax.report.benchmark_page import MapView, benchmark_page_html
from salijax.report.html_page import Cell, Table
from salijax.report.overlay_image import overlay_png

PAGE_NAME = "index.html"


def map_views(ctx: Context) -> list[MapView]:
  """Every explained map of every run as a MapView, ordered by run, label mode,
  perturbation, image, then method."""
  config, eval_set = ctx.config, ctx.eval_set()
  names = eval_set.class_names
  views = []
  for run in ctx.runs:
    for label_mode in label_modes(config):
      for perturbation in perturbation_names(config):
        for b, positions in enumerate(eval_set.batch_indices(config.batch_size)):
          batch = ctx.batch(positions, config.batch_size, run)
          images = stage_helpers.images(ctx, run, batch, b, perturbation)[batch["valid"]]
          explained = {method: batch_units.read(
              ctx, "explain", batch_units.Unit(run, method, label_mode, perturbation, b))
              for method in method_names(config)}
          first = next(iter(explained.values()))
          for i, position in enumerate(first["position"]):
            caption = (f"true: {names[int(first['true'][i])]}, pred:"
                       f" {names[int(first['predicted'][i])]}, explained:"
                       f" {names[int(first['label'][i])]}")
            for method, arrays in explained.items():
              views.append(MapView(
                  run.model, run.mode, method, label_mode, perturbation,
                  eval_set.indices[int(position)],
                  overlay_png(images[i], arrays["maps"][i], cmap=config.colormap), caption))
  return views


def figure_files(out: pathlib.Path) -> list[tuple[str, str]]:
  """(file name, stem) of every PNG figure in `out`: training.png first, then by name."""
  return [(path.name, path.stem) for path in sorted(
      out.glob("*.png"), key=lambda p: (p.name != "training.png", p.name))]


def accuracy_table(records: Mapping[str, Mapping[str, Any]]) -> Table:
  """The runs' test accuracy, loss and epochs (models/<run>.json records)."""
  header = ["run", "test accuracy", "test loss", "epochs"]
  return Table("Test accuracy and loss of each run", header, [
      [name, Cell(f"{r['test_accuracy']:.3f}", float(r["test_accuracy"])),
       Cell(f"{r['test_loss']:.3f}", float(r["test_loss"])),
       Cell(str(r["epochs"]), float(r["epochs"]))] for name, r in records.items()])


def write_page(ctx: Context, rows: Sequence[Mapping[str, Any]], out: pathlib.Path,
               title: str, records: Mapping[str, Mapping[str, Any]]) -> pathlib.Path:
  """Writes out/index.html (module doc) after the figures; returns its path. `records`: each
  run's models/<run>.json with its accuracy (`report_stage.model_records`)."""
  config = ctx.config
  figures = [(file, stem.replace("_", " ")) for file, stem in figure_files(out)]
  modes = ", ".join(m.replace("_", " ") for m in label_modes(config))
  shown = [name for name in perturbation_names(config) if name != perturbations.NONE]
  intro = (f"Runs: {', '.join(run.name for run in ctx.runs)}. Methods:"
           f" {', '.join(method_names(config))}. Classes explained: {modes}."
           + (f" Perturbations: {', '.join(shown)}." if shown else "")
           + " Files beside this page: results.csv (every value), summary.md, manifest.json.")
  page = benchmark_page_html(title, rows, map_views(ctx), intro=intro,
                             accuracy=accuracy_table(records), figures=figures,
                             controls=names_list(config.controls), colormap=config.colormap)
  path = out / PAGE_NAME
  atomic_files.write_text_atomic(path, page)
  return path
