"""The report stage: the stages' files -> report/ (tables, summary, diagnostics, figures).

report/results.csv, results.json   one row per (model, mode, image, label mode,
                                   perturbation, method, metric); the extra metrics'
                                   per-image fields as metrics "<metric>.<field>"
report/summary.md                  accuracy per run (of an untrained "pretrained" run: on the
                                   evaluation images), method x metric tables (mean, 95 % CI)
                                   per run (and label mode), one such table per extra metric
                                   (config.metrics) of its fields, the perturbations' prediction
                                   flips, map robustness and metric changes, the sanity
                                   check's verdicts, the figures
report/diagnostics.json            per run and image, the config.diagnostics_top_k most and
                                   least likely classes with their probabilities
report/manifest.json               versions, git revision, devices, XLA flags, precision, config
report/<run>_overlays.png          images x methods (the first label mode; the others:
                                   <run>_<label_mode>_overlays.png)
report/<run>_pointing.png          the overlays' images x methods with each map's maximum
                                   marked against the object, hit or miss
                                   (`report.pointing_figure`; idem; datasets with object masks
                                   or boxes only)
report/<run>_curves.png            mean insertion and deletion curves (idem)
report/<run>_<metric>.<field>.png  mean curve per method of each curve field of the extra
                                   metrics (config.metrics; idem)
report/<run>_perturbations.png     the first image and its perturbations x methods (first
                                   label mode; with config.perturbations only)
report/<run>_sanity.png            similarity per randomised block
report/<run>_mask_search.png       with mask_search among the methods: its objective per step
                                   (each image, and the mean) beside every method's cost per
                                   image (seconds measured, passes counted; first label mode,
                                   clean images)
report/training.png                training curves of every run
report/index.html                  all of the above in one page for a browser: the tables
                                   (sortable), the figures and a gallery of every map with
                                   its metric values, filterable (`report_page`)

Sanity rows (and figures) belong to the first label mode's clean images, the
classes the sanity stage explains. Every unit is read through
`batch_units.read` (an unreadable one is computed again).
"""

import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import ml_collections
import numpy as np
from absl import logging

from salijax import methods, perturbations, report
from salijax.methods.registry import Shapes
from salijax.pipeline import batch_units, report_page
from salijax.pipeline import benchmark_workdir as bw
from salijax.pipeline.benchmark_config import (
    Run,
    label_modes,
    method_names,
    method_options,
    metric_names,
    metric_options,
    names_list,
    perturbation_names,
)
from salijax.pipeline.stage_context import Context
from salijax.report.convergence_figure import MethodCost, convergence_figure
from salijax.report.summary_table import label_mode_text
from salijax.train import metrics_writer

CURVES = ("insertion_curve", "deletion_curve")
NOT_METRICS = CURVES + ("position",)
NOT_PER_IMAGE = ("perturbations",)  # the predict files' list of names


def _concatenated(parts: Sequence[dict[str, np.ndarray]], axis: dict[str, int] | None = None
                  ) -> dict[str, np.ndarray]:
  """The per-image arrays of batch files joined along their image axis (0 unless in `axis`);
  scalars (a unit's seconds) and NOT_PER_IMAGE are left out."""
  axis = axis or {}
  return {name: np.concatenate([p[name] for p in parts], axis=axis.get(name, 0))
          for name in parts[0] if parts[0][name].ndim and name not in NOT_PER_IMAGE}


def _batches(ctx: Context, stage: str, run: Run, method: str, label_mode: str,
             perturbation: str) -> dict[str, np.ndarray]:
  """The concatenated arrays of one (run, method, label mode, perturbation)'s batch files of
  `stage`."""
  return _concatenated([
      batch_units.read(ctx, stage, batch_units.Unit(run, method, label_mode, perturbation, b))
      for b in range(batch_units.num_batches(ctx))])


def _predictions(ctx: Context, run: Run) -> dict[str, np.ndarray]:
  """The predict stage's arrays of `run`, all batches (perturbed_predicted i32[P,N])."""
  return _concatenated([batch_units.read(ctx, "predict", batch_units.BatchUnit(run, b))
                        for b in range(batch_units.num_batches(ctx))],
                       axis={"perturbed_predicted": 1})


def model_records(ctx: Context) -> dict[str, dict[str, Any]]:
  """{run name: models/<run>.json}; a "pretrained" run's (untrained: no test accuracy and loss
  in its record) with the top-1 accuracy and mean cross-entropy of the evaluation images, from
  the predict stage's probabilities."""
  records = {}
  for run in ctx.runs:
    record = dict(ctx.record(run))
    if record["test_accuracy"] is None:
      predicted = _predictions(ctx, run)
      probabilities, true = predicted["probabilities"], predicted["true"]
      p_true = probabilities[np.arange(len(true)), true]
      record["test_accuracy"] = float(np.mean(probabilities.argmax(-1) == true))
      record["test_loss"] = float(np.mean(-np.log(np.maximum(p_true, np.finfo(np.float32).tiny))))
    records[run.name] = record
  return records


def _sanity(ctx: Context, run: Run) -> dict[str, dict[str, np.ndarray]]:
  """{method: its sanity file} of config.sanity.methods."""
  return {m: batch_units.read(ctx, "sanity", batch_units.SanityUnit(run, m))
          for m in names_list(ctx.config.sanity.methods)}


def results_rows(ctx: Context) -> list[dict[str, Any]]:
  """The long-format rows (`salijax.report.COLUMNS`) of every run, label mode, perturbation,
  method and metric."""
  config, eval_set = ctx.config, ctx.eval_set()
  first_mode = label_modes(config)[0]
  rows = []
  for run in ctx.runs:
    checks = _sanity(ctx, run)
    for label_mode in label_modes(config):
      for perturbation in perturbation_names(config):
        for method in method_names(config):
          explained = _batches(ctx, "explain", run, method, label_mode, perturbation)
          scores = _batches(ctx, "evaluate", run, method, label_mode, perturbation)
          metric_values = {k: v for k, v in scores.items()
                           if k not in NOT_METRICS and v.ndim == 1}
          sanity_positions = None
          if (method in checks and label_mode == first_mode
              and perturbation == perturbations.NONE):
            sanity = checks[method]
            sanity_positions = {int(p): i for i, p in enumerate(sanity["position"])}
          for i, position in enumerate(explained["position"]):
            base = {"model": run.model, "mode": run.mode, "dataset": eval_set.dataset,
                    "split": eval_set.split, "image_id": eval_set.indices[int(position)],
                    "label": int(explained["true"][i]),
                    "predicted": int(explained["predicted"][i]), "label_mode": label_mode,
                    "explained": int(explained["label"][i]), "perturbation": perturbation,
                    "method": method, "seed": config.seed}
            values = {name: float(v[i]) for name, v in metric_values.items()}
            if sanity_positions is not None and int(position) in sanity_positions:
              j = sanity_positions[int(position)]
              values.update({f"sanity_{k[len('similarity_'):]}": float(v[-1, j])
                             for k, v in sanity.items() if k.startswith("similarity_")})
            rows += [{**base, "metric": name, "value": value} for name, value in values.items()]
  return rows


def diagnostics(ctx: Context) -> dict[str, Any]:
  """report/diagnostics.json: {"top_k", "runs": {run: [per image: image_id, label,
  label_name, predicted, most_likely, least_likely]}} (`report.prediction_diagnostics`)."""
  config, eval_set = ctx.config, ctx.eval_set()
  names = eval_set.class_names
  result: dict[str, Any] = {"top_k": config.diagnostics_top_k, "runs": {}}
  for run in ctx.runs:
    predicted = _predictions(ctx, run)
    ranked = report.prediction_diagnostics(predicted["probabilities"], names,
                                           top_k=config.diagnostics_top_k)
    result["runs"][run.name] = [
        {"image_id": eval_set.indices[int(position)], "label": int(true),
         "label_name": names[int(true)], "predicted": int(np.argmax(probabilities)), **classes}
        for position, true, probabilities, classes in zip(
            predicted["position"], predicted["true"], predicted["probabilities"], ranked,
            strict=True)]
  return result


def _accuracy_table(records: Mapping[str, Mapping[str, Any]]) -> str:
  lines = ["| run | test accuracy | test loss | epochs |", "|---|---|---|---|"]
  lines += [f"| {name} | {r['test_accuracy']:.3f} | {r['test_loss']:.3f} | {r['epochs']} |"
            for name, r in records.items()]
  return "\n".join(lines)


def _sanity_table(ctx: Context) -> str:
  lines = []
  for run in ctx.runs:
    for method, arrays in _sanity(ctx, run).items():
      verdicts = ", ".join(f"{k[len('passed_'):]} {'pass' if v else 'FAIL'}"
                           for k, v in arrays.items() if k.startswith("passed_"))
      lines.append(f"| {run.name} | {method} | {verdicts} |")
  if not lines:
    return ""
  return "\n".join(["| run | method | verdict per similarity measure |", "|---|---|---|", *lines])


def _figure_name(run: Run, label_mode: str, first_mode: str, kind: str) -> str:
  """<run>_<kind>.png for the first label mode, <run>_<label_mode>_<kind>.png otherwise."""
  return f"{run.name}_{kind}.png" if label_mode == first_mode else (
      f"{run.name}_{label_mode}_{kind}.png")


def _perturbation_figure(ctx: Context, run: Run, batch: dict[str, np.ndarray],
                         out: pathlib.Path) -> None:
  """The first image and its perturbations (rows) with every method's maps (columns); the
  first image is the first of batch 0 (`batch`: the overlay images)."""
  config = ctx.config
  names = perturbation_names(config)
  images = np.stack([batch["image"][0] if name == perturbations.NONE else batch_units.read(
      ctx, "perturb", batch_units.PerturbationUnit(run, name, 0))["images"][0] for name in names])
  label_mode = label_modes(config)[0]
  maps = {method: np.stack([
      batch_units.read(ctx, "explain",
                       batch_units.Unit(run, method, label_mode, name, 0))["maps"][0]
      for name in names]) for method in method_names(config)}
  report.overlay_grid(out / f"{run.name}_perturbations.png", images, maps,
                      row_labels=list(names), cmap=config.colormap,
                      title=f"{run.name}: the {label_mode_text(label_mode)} of perturbed images")


def _extra_curve_figures(ctx: Context, run: Run, label_mode: str,
                         scores: dict[str, dict[str, np.ndarray]], out: pathlib.Path,
                         title: str) -> None:
  """<run>[_<label_mode>]_<metric>.<field>.png: the mean curve per method of every curve field
  of the extra metrics (`report.mean_curve_figure`)."""
  modes = label_modes(ctx.config)
  names = [name for name in next(iter(scores.values()))
           if "." in name and next(iter(scores.values()))[name].ndim == 2]
  for name in names:
    info = report.metric_info(name)
    curves = {m: s[name] for m, s in scores.items()
              if name in s and np.isfinite(s[name]).any(axis=0).all()}
    if curves:
      report.mean_curve_figure(out / _figure_name(run, label_mode, modes[0], name), curves,
                               title=f"{title}: {name}", ylabel=name,
                               higher_is_better=info.higher_is_better,
                               controls=names_list(ctx.config.controls))


def _extra_sections(ctx: Context, rows: Sequence[dict[str, Any]],
                    controls: Sequence[str]) -> list[str]:
  """summary.md's table of each extra metric (config.metrics) with results: its fields."""
  sections = []
  for name in metric_names(ctx.config):
    mine = [row for row in rows if row["metric"].startswith(f"{name}.")]
    if mine:
      options = metric_options(ctx.config, name)
      text = ", ".join(f"{k}={v!r}" for k, v in options.items()) or "defaults"
      sections.append(report.summary_markdown(
          mine, controls=controls, title=f"`{name}` ({text}; docs/metrics.md#{name})"))
  return sections


def method_costs(ctx: Context, run: Run) -> dict[str, MethodCost]:
  """{method: its cost per image under `run`}: the median over its explain units of their
  seconds per explained image (the first unit's include compilation), and the passes per
  image its registry entry counts with the config's options."""
  config, size = ctx.config, ctx.config.image_size
  clf = ctx.model(run).classifier
  channels = 0 if clf.features is None else int(jax.eval_shape(
      clf.features, clf.variables, jax.ShapeDtypeStruct((1, size, size, 3), np.float32)).shape[-1])
  shapes = Shapes(config.batch_size, size, size, channels)
  costs = {}
  for method in method_names(config):
    per_image = [float(arrays["seconds"]) / len(arrays["position"]) for arrays in (
        batch_units.read(ctx, "explain", unit) for unit in batch_units.method_units(ctx)
        if unit.run == run and unit.method == method)]
    info = methods.info(method)
    counted = info.cost(info.resolve(method_options(config, method)), shapes)
    costs[method] = MethodCost(float(np.median(per_image)), counted.kind, counted.passes)
  return costs


def _mask_search_figure(ctx: Context, run: Run, out: pathlib.Path) -> None:
  """<run>_mask_search.png (module doc), with mask_search among the methods."""
  config = ctx.config
  if "mask_search" not in method_names(config):
    return
  explained = _batches(ctx, "explain", run, "mask_search", label_modes(config)[0],
                       perturbations.NONE)
  if "objective" not in explained:  # explained before the explain files held it
    logging.warning("%s: the mask_search explain files hold no objective (explained by an "
                    "older salijax); no %s_mask_search.png", run.name, run.name)
    return
  convergence_figure(out / f"{run.name}_mask_search.png", explained["objective"],
                     method_costs(ctx, run), method="mask_search",
                     ylabel="target probability of the masked image",
                     title=f"{run.name}: the mask search's convergence and each method's cost",
                     controls=names_list(config.controls))


def write_figures(ctx: Context, out: pathlib.Path) -> None:
  """The overlay grids, pointing games, curves, perturbations, mask search convergence and
  sanity strip of every run, and the training curves (module doc)."""
  config, eval_set = ctx.config, ctx.eval_set()
  shown = min(config.overlay_images, len(eval_set.indices))
  names = eval_set.class_names
  modes = label_modes(config)
  clean = perturbations.NONE
  for run in ctx.runs:
    batch = ctx.batch(np.arange(shown), shown, run) if shown else None
    for label_mode in modes:
      explained = {m: _batches(ctx, "explain", run, m, label_mode, clean)
                   for m in method_names(config)}
      if batch is not None:
        first = next(iter(explained.values()))
        row_labels = [
            f"true: {names[t]}\npred: {names[p]}"
            + ("" if label_mode == "ground_truth" else f"\nexpl: {names[e]}")
            for t, p, e in zip(first["true"][:shown], first["predicted"][:shown],
                               first["label"][:shown], strict=True)]
        shown_maps = {m: e["maps"][:shown] for m, e in explained.items()}
        report.overlay_grid(out / _figure_name(run, label_mode, modes[0], "overlays"),
                            batch["image"], shown_maps, row_labels=row_labels,
                            cmap=config.colormap,
                            title=f"{run.name}: the {label_mode.replace('_', ' ')} class")
        region = batch.get("mask", batch.get("bbox"))
        if region is not None:
          report.pointing_figure(
              out / _figure_name(run, label_mode, modes[0], "pointing"), batch["image"],
              shown_maps, region, tolerance=config.pointing_tolerance, row_labels=row_labels,
              cmap=config.colormap,
              title=f"{run.name}: pointing game, the {label_mode.replace('_', ' ')} class")
      scores = {m: _batches(ctx, "evaluate", run, m, label_mode, clean)
                for m in method_names(config)}
      title = run.name if len(modes) == 1 else f"{run.name}, {label_mode.replace('_', ' ')}"
      report.insertion_deletion_figure(
          out / _figure_name(run, label_mode, modes[0], "curves"),
          {m: (s["insertion_curve"], s["deletion_curve"]) for m, s in scores.items()},
          title=title, controls=names_list(config.controls))
      _extra_curve_figures(ctx, run, label_mode, scores, out, title)
    if batch is not None and names_list(config.perturbations):
      _perturbation_figure(ctx, run, batch, out)
    _mask_search_figure(ctx, run, out)
    sanity = _sanity(ctx, run)
    if sanity:
      blocks = [str(b) for b in next(iter(sanity.values()))["block_names"]]
      report.sanity_figure(
          out / f"{run.name}_sanity.png", blocks,
          {m: {k[len("similarity_"):]: v for k, v in a.items() if k.startswith("similarity_")}
           for m, a in sanity.items()},
          {m: {k[len("baseline_"):]: float(np.mean(v)) for k, v in a.items()
               if k.startswith("baseline_")} for m, a in sanity.items()},
          title=f"{run.name}: {config.sanity.mode} randomisation")
  logs = {run.name: metrics_writer.read_metrics(bw.run_dir(ctx.workdir, "train", run.name))
          for run in ctx.runs}
  report.training_figure(out / "training.png", logs)


def _classes_text(config: ml_collections.ConfigDict) -> str:
  """"ground truth class", or "ground truth, least likely classes"."""
  modes = [m.replace("_", " ") for m in label_modes(config)]
  return f"{modes[0]} class" if len(modes) == 1 else f"{', '.join(modes)} classes"


def run_stage(ctx: Context) -> dict[str, Any]:
  """Writes report/ (see the module doc); returns {"rows": number of result rows}."""
  config, eval_set, records = ctx.config, ctx.eval_set(), model_records(ctx)
  out = pathlib.Path(ctx.workdir) / "report"
  rows = results_rows(ctx)
  report.write_results(rows, out)
  controls = names_list(config.controls)
  fixed = [row for row in rows if "." not in row["metric"]]
  title = (f"salijax benchmark: {eval_set.dataset} ({eval_set.split}, "
           f"{len(eval_set.indices)} images, {_classes_text(config)})")
  sections = [f"# {title}",
              "## Models", _accuracy_table(records),
              report.summary_markdown(fixed, controls=controls),
              *_extra_sections(ctx, rows, controls)]
  perturbed = report.perturbation_markdown(rows, controls=controls)
  if perturbed:
    sections += ["## Perturbed images",
                 f"Perturbations: {', '.join(names_list(config.perturbations))}. The methods "
                 "explain the perturbed image, for the class explained on the clean image.",
                 perturbed]
  sanity = _sanity_table(ctx)
  if sanity:
    sections += [f"## Sanity check ({config.sanity.mode} parameter randomisation, "
                 f"{config.sanity.num_images} images)",
                 "A method passes when its maps of the fully randomised model are less similar "
                 "to the trained model's than maps of different images are.", sanity]
  write_figures(ctx, out)
  sections += ["## Figures", *(f"![{name.replace('_', ' ')}]({file})"
                               for file, name in report_page.figure_files(out))]
  bw.write_bytes_atomic(out / "summary.md", ("\n\n".join(sections) + "\n").encode())
  bw.write_json(out / "diagnostics.json", diagnostics(ctx))
  report_page.write_page(ctx, rows, out, title, records)
  manifest = report.build_manifest(config, stage_seconds=ctx.stage_seconds,
                                   extra={"runs": dict(records)})
  bw.write_json(out / "manifest.json", manifest)
  return {"rows": len(rows)}
