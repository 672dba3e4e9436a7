"""The report stage: the stages' files -> report/ (tables, summary, manifest, figures).

report/results.csv, results.json   one row per (model, mode, image, method, metric)
report/summary.md                  accuracy per run, method x metric tables (mean, 95 % CI),
                                   the sanity check's verdicts
report/manifest.json               versions, git revision, devices, XLA flags, precision, config
report/<run>_overlays.png          images x methods
report/<run>_curves.png            mean insertion and deletion curves
report/<run>_sanity.png            similarity per randomised block
report/training.png                training curves of every run
"""

import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

import ml_collections
import numpy as np

from salijax import report
from salijax.pipeline import benchmark_workdir as bw
from salijax.pipeline import evaluation_set, sanity_stage
from salijax.pipeline.benchmark_config import Run, method_names, names_list
from salijax.train import metrics_writer

CURVES = ("insertion_curve", "deletion_curve")
NOT_METRICS = CURVES + ("position",)


def _batches(workdir: str, stage: str, run: Run, method: str, count: int) -> dict[str, np.ndarray]:
  """The concatenated arrays of a (run, method)'s `count` batch files of `stage`."""
  parts = [bw.load_arrays(bw.batch_path(workdir, stage, run.name, method, b))
           for b in range(count)]
  return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]
          if parts[0][name].ndim}


def results_rows(config: ml_collections.ConfigDict, workdir: str, runs: Sequence[Run],
                 eval_set: evaluation_set.EvaluationSet) -> list[dict[str, Any]]:
  """The long-format rows (`salijax.report.COLUMNS`) of every run, method and metric."""
  count = len(eval_set.batch_indices(config.batch_size))
  rows = []
  for run in runs:
    for method in method_names(config):
      explained = _batches(workdir, "explain", run, method, count)
      scores = _batches(workdir, "evaluate", run, method, count)
      metric_values = {k: v for k, v in scores.items() if k not in NOT_METRICS}
      sanity_file = sanity_stage.path(workdir, run, method)
      sanity_positions = None
      if sanity_file.exists():
        sanity = bw.load_arrays(sanity_file)
        sanity_positions = {int(p): i for i, p in enumerate(sanity["position"])}
      for i, position in enumerate(explained["position"]):
        base = {"model": run.model, "mode": run.mode, "dataset": eval_set.dataset,
                "split": eval_set.split, "image_id": eval_set.indices[int(position)],
                "label": int(explained["true"][i]), "predicted": int(explained["predicted"][i]),
                "method": method, "seed": config.seed}
        values = {name: float(v[i]) for name, v in metric_values.items()}
        if sanity_positions is not None and int(position) in sanity_positions:
          j = sanity_positions[int(position)]
          values.update({f"sanity_{k[len('similarity_'):]}": float(v[-1, j])
                         for k, v in sanity.items() if k.startswith("similarity_")})
        rows += [{**base, "metric": name, "value": value} for name, value in values.items()]
  return rows


def _accuracy_table(records: Mapping[str, Mapping[str, Any]]) -> str:
  lines = ["| run | test accuracy | test loss | epochs |", "|---|---|---|---|"]
  lines += [f"| {name} | {r['test_accuracy']:.3f} | {r['test_loss']:.3f} | {r['epochs']} |"
            for name, r in records.items()]
  return "\n".join(lines)


def _sanity_table(config: ml_collections.ConfigDict, workdir: str, runs: Sequence[Run]) -> str:
  lines = []
  for run in runs:
    for method in names_list(config.sanity.methods):
      arrays = bw.load_arrays(sanity_stage.path(workdir, run, method))
      verdicts = ", ".join(f"{k[len('passed_'):]} {'pass' if v else 'FAIL'}"
                           for k, v in arrays.items() if k.startswith("passed_"))
      lines.append(f"| {run.name} | {method} | {verdicts} |")
  if not lines:
    return ""
  return "\n".join(["| run | method | verdict per similarity measure |", "|---|---|---|", *lines])


def write_figures(config: ml_collections.ConfigDict, workdir: str, runs: Sequence[Run],
                  eval_set: evaluation_set.EvaluationSet, out: Any) -> None:
  """The overlay grid, curves and sanity strip of every run, and the training curves."""
  count = len(eval_set.batch_indices(config.batch_size))
  shown = min(config.overlay_images, len(eval_set.indices))
  batch = None
  if shown:
    source = evaluation_set.load_source(config, config.eval_split)
    batch = evaluation_set.eval_batch(config, source, eval_set, np.arange(shown), shown)
  names = eval_set.class_names
  for run in runs:
    explained = {m: _batches(workdir, "explain", run, m, count) for m in method_names(config)}
    if batch is not None:
      first = next(iter(explained.values()))
      row_labels = [f"true: {names[t]}\npred: {names[p]}"
                    for t, p in zip(first["true"][:shown], first["predicted"][:shown])]
      report.overlay_grid(out / f"{run.name}_overlays.png", batch["image"],
                          {m: e["maps"][:shown] for m, e in explained.items()},
                          row_labels=row_labels, cmap=config.colormap,
                          title=f"{run.name}: the {config.label_mode.replace('_', ' ')} class")
    scores = {m: _batches(workdir, "evaluate", run, m, count) for m in method_names(config)}
    report.insertion_deletion_figure(
        out / f"{run.name}_curves.png",
        {m: (s["insertion_curve"], s["deletion_curve"]) for m, s in scores.items()},
        title=run.name, controls=names_list(config.controls))
    sanity = {m: bw.load_arrays(sanity_stage.path(workdir, run, m))
              for m in names_list(config.sanity.methods)}
    if sanity:
      blocks = [str(b) for b in next(iter(sanity.values()))["block_names"]]
      report.sanity_figure(
          out / f"{run.name}_sanity.png", blocks,
          {m: {k[len("similarity_"):]: v for k, v in a.items() if k.startswith("similarity_")}
           for m, a in sanity.items()},
          {m: {k[len("baseline_"):]: float(np.mean(v)) for k, v in a.items()
               if k.startswith("baseline_")} for m, a in sanity.items()},
          title=f"{run.name}: {config.sanity.mode} randomisation")
  logs = {run.name: metrics_writer.read_metrics(bw.run_dir(workdir, "train", run.name))
          for run in runs}
  report.training_figure(out / "training.png", logs)


def run_stage(config: ml_collections.ConfigDict, workdir: str, runs: Sequence[Run],
              eval_set: evaluation_set.EvaluationSet, records: Mapping[str, Mapping[str, Any]],
              stage_seconds: Mapping[str, float]) -> dict[str, Any]:
  """Writes report/ (see the module doc); returns {"rows": number of result rows}."""
  out = pathlib.Path(workdir) / "report"
  rows = results_rows(config, workdir, runs, eval_set)
  report.write_results(rows, out)
  sections = [f"# salijax benchmark: {eval_set.dataset} ({eval_set.split}, "
              f"{len(eval_set.indices)} images, {config.label_mode.replace('_', ' ')} class)",
              "## Models", _accuracy_table(records),
              report.summary_markdown(rows, controls=names_list(config.controls))]
  sanity = _sanity_table(config, workdir, runs)
  if sanity:
    sections += [f"## Sanity check ({config.sanity.mode} parameter randomisation, "
                 f"{config.sanity.num_images} images)",
                 "A method passes when its maps of the fully randomised model are less similar "
                 "to the trained model's than maps of different images are.", sanity]
  bw.write_bytes_atomic(out / "summary.md", ("\n\n".join(sections) + "\n").encode())
  write_figures(config, workdir, runs, eval_set, out)
  manifest = report.build_manifest(config, stage_seconds=stage_seconds,
                                   extra={"runs": dict(records)})
  bw.write_json(out / "manifest.json", manifest)
  return {"rows": len(rows)}
