"""`run_benchmark(config, workdir)`: the end-to-end saliency benchmark, stage by stage.

Stages (salijax.pipeline.benchmark_workdir.STAGES), each skipped when its
DONE.json exists and each made of units skipped when their file exists, so a
killed run restarted with the same workdir finishes with the same results:

  data      prepare the dataset, choose the evaluation images (evaluation_set)
  train     one salijax.train run per (model, mode), exported (trained_models)
  predict   each run's class probabilities of the images (prediction_stage)
  explain   every method's maps, per label mode and perturbation (explanation_stage)
  evaluate  every metric of every map (evaluation_stage)
  sanity    the parameter-randomisation check on a few images (sanity_stage)
  report    tables, summary, diagnostics, manifest and figures (report_stage)

Several JAX processes (`salijax.parallel.initialize`) share the predict,
explain, evaluate and sanity units; process 0 does the data and report stages. The
train stage runs in one process (data parallel over its local devices): in a
multi-process run it must already be done.

    from experiments.configs import benchmark
    summary = salijax.pipeline.run_benchmark(benchmark.get_config(), "workdir/benchmark")
"""

import importlib.metadata
import os
import pathlib
import time
from typing import Any

import jax
import ml_collections
from absl import logging

import salijax
from salijax import parallel
from salijax.pipeline import benchmark_config
from salijax.pipeline import benchmark_workdir as bw
from salijax.pipeline import (evaluation_set, evaluation_stage, explanation_stage,
                              prediction_stage, report_stage, sanity_stage, stage_progress,
                              trained_models)


def log_environment() -> None:
  """Logs the versions, devices, processes and matmul precision of this run."""
  versions = ", ".join(f"{name} {importlib.metadata.version(name)}"
                       for name in ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint"))
  logging.info("%s; salijax %s; backend %s", versions, salijax.__version__,
               jax.default_backend())
  logging.info("process %d of %d; local devices %s; %d devices in all",
               parallel.process_index(), parallel.process_count(), jax.local_devices(),
               jax.device_count())
  logging.info("matmul precision %s; XLA_FLAGS=%r",
               jax.config.jax_default_matmul_precision or "default",
               os.environ.get("XLA_FLAGS", ""))


def _data_stage(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  evaluation_set.load_source(config, config.train_split)  # prepares it (generation, checks)
  source = evaluation_set.load_source(config, config.eval_split)
  eval_set = evaluation_set.select(config, source)
  bw.write_json(pathlib.Path(workdir) / "data" / "eval_set.json", eval_set.to_json())
  return {"images": len(eval_set.indices)}


def _load_eval_set(workdir: str) -> evaluation_set.EvaluationSet:
  return evaluation_set.EvaluationSet.from_json(
      bw.read_json(pathlib.Path(workdir) / "data" / "eval_set.json"))


def run_benchmark(config: ml_collections.ConfigDict, workdir: str | os.PathLike, *,
                  progress: bool = True, stages_through: str = "report") -> dict[str, Any]:
  """Runs (or resumes) the stages; returns {"stage_seconds", "runs", "report_dir"}.

  Args:
    config: experiments/configs/benchmark.py's config.
    workdir: where everything goes (benchmark_workdir's layout).
    progress: show a progress bar per stage (process 0 only).
    stages_through: the last stage to run (`benchmark_workdir.STAGES`).

  Raises:
    ValueError: an invalid config, a workdir holding another config, or a
      multi-process run whose train stage is not done.
  """
  benchmark_config.validate_config(config)
  if stages_through not in bw.STAGES:
    raise ValueError(f"stages_through: expected one of {bw.STAGES}, got {stages_through!r}")
  workdir = str(workdir)
  log_environment()
  lead = parallel.process_index() == 0
  if lead:
    bw.check_same_config(workdir, config)
  parallel.barrier("salijax-benchmark-config")
  if not lead:
    bw.check_same_config(workdir, config)
  if parallel.process_count() > 1 and bw.stage_done(workdir, "train") is None:
    raise ValueError(
        "the train stage runs in one process: run the benchmark once with one process to "
        "train (or to the end), then start the processes again to share the other stages")
  runs = benchmark_config.runs(config)
  seconds: dict[str, float] = {}
  records: dict[str, Any] = {}
  for stage in bw.STAGES[:bw.STAGES.index(stages_through) + 1]:
    done = bw.stage_done(workdir, stage)
    if done is not None:
      logging.info("stage %s: already done (%.1f s), skipped", stage, done["seconds"])
      seconds[stage] = done["seconds"]
      continue
    start = time.perf_counter()
    summary: dict[str, Any] = {}
    if stage == "data" and lead:
      summary = _data_stage(config, workdir)
    elif stage == "train":
      with stage_progress.stage_progress("train", total=len(runs), unit="run",
                                         enabled=progress and lead) as bar:
        for run in runs:
          records[run.name] = trained_models.train_run(config, workdir, run)
          bar.update(1)
      summary = {name: r["test_accuracy"] for name, r in records.items()}
    elif stage in ("predict", "explain", "evaluate", "sanity"):
      module = {"predict": prediction_stage, "explain": explanation_stage,
                "evaluate": evaluation_stage, "sanity": sanity_stage}[stage]
      with stage_progress.stage_progress(stage, total=0, unit="img" if stage != "sanity"
                                         else "check", enabled=progress and lead) as bar:
        module.run_stage(config, workdir, runs, _load_eval_set(workdir), bar)
    elif stage == "report" and lead:
      records = {run.name: trained_models.load_run_record(workdir, run) for run in runs}
      summary = report_stage.run_stage(config, workdir, runs, _load_eval_set(workdir), records,
                                       seconds)
    parallel.barrier(f"salijax-benchmark-{stage}")
    seconds[stage] = time.perf_counter() - start
    if lead:
      bw.mark_done(workdir, stage, {"seconds": seconds[stage], **summary})
      logging.info("stage %s: done in %.1f s %s", stage, seconds[stage], summary or "")
    parallel.barrier(f"salijax-benchmark-{stage}-done")
  if bw.stage_done(workdir, "train") is not None:
    records = {run.name: trained_models.load_run_record(workdir, run) for run in runs}
  if lead:
    logging.info("stage seconds: %s; report in %s", {k: round(v, 1) for k, v in seconds.items()},
                 pathlib.Path(workdir) / "report")
  return {"stage_seconds": seconds, "runs": records,
          "report_dir": str(pathlib.Path(workdir) / "report")}
