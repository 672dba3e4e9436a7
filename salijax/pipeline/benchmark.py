"""`run_benchmark(config, workdir)`: the end-to-end saliency benchmark, stage by stage.

Stages (`STAGES`), each skipped when its DONE.json exists and each made of
units skipped when their file exists, so a killed run restarted with the
same workdir finishes with the same results. A finished workdir accepts a
config that differs only in `benchmark_config.RESULT_FIELDS` (config.metrics,
config.metric_options): the stages that use them (the evaluate and report
stages) run again, and only the changed extra metrics are computed:

  data      prepare the dataset, choose the evaluation images (data_stage)
  train     one salijax.train run per (model, mode), exported (train_stage)
  perturb   each run's perturbed images of every batch (perturbation_stage)
  predict   each run's class probabilities of the images (prediction_stage)
  explain   every method's maps, per label mode and perturbation (explanation_stage)
  evaluate  every metric of every map (evaluation_stage)
  sanity    the parameter-randomisation check on a few images (sanity_stage)
  report    tables, summary, diagnostics, manifest and figures (report_stage)

Every stage is a function `stage(ctx) -> summary` of a `stage_context.Context`
(the summary goes into its DONE.json); the stages made of units are
`batch_units.UnitStage`s. Before any stage runs, the workdir is checked to
hold what its finished stages wrote (`workdir_completeness`). Several JAX
processes (`salijax.parallel.initialize`) share the units; process 0 does
the data and report stages; the train stage trains each run data parallel
over all of them (`salijax.train.loop`), so one command runs the whole
benchmark on several hosts (a "pretrained" run is not trained: process 0
exports its model).

    from experiments.configs import benchmark
    summary = salijax.pipeline.run_benchmark(benchmark.get_config(), "workdir/benchmark")
"""

import importlib.metadata
import os
import pathlib
import time
from collections.abc import Callable
from typing import Any

import jax
import ml_collections
from absl import logging

import salijax
from salijax import parallel
from salijax.pipeline import (
    batch_units,
    benchmark_config,
    data_stage,
    evaluation_stage,
    explanation_stage,
    perturbation_stage,
    prediction_stage,
    report_stage,
    sanity_stage,
    stage_context,
    train_stage,
    workdir_completeness,
)
from salijax.pipeline import benchmark_workdir as bw

# name -> (stage(ctx) -> the summary of its DONE.json, whether process 0 alone runs it).
_TABLE: dict[str, tuple[Callable[[stage_context.Context], dict[str, Any]], bool]] = {
    "data": (data_stage.run_stage, True),
    "train": (train_stage.run_stage, False),
    "perturb": (perturbation_stage.STAGE, False),
    "predict": (prediction_stage.STAGE, False),
    "explain": (explanation_stage.STAGE, False),
    "evaluate": (evaluation_stage.STAGE, False),
    "sanity": (sanity_stage.STAGE, False),
    "report": (report_stage.run_stage, True),
}
STAGES = tuple(_TABLE)


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


def run_benchmark(config: ml_collections.ConfigDict, workdir: str | os.PathLike, *,
                  progress: bool = True, stages_through: str = "report") -> dict[str, Any]:
  """Runs (or resumes) the stages; returns {"stage_seconds", "runs", "report_dir"}.

  Args:
    config: experiments/configs/benchmark.py's config.
    workdir: where everything goes (benchmark_workdir's layout).
    progress: show progress lines per stage and per training epoch (process 0 only;
      `salijax.progress`).
    stages_through: the last stage to run (`STAGES`).

  Raises:
    ValueError: an invalid config, or a workdir holding another config.
    workdir_completeness.IncompleteWorkdirError: a finished stage's outputs are
      missing, or a stage is done while one before it is not.
  """
  benchmark_config.validate_config(config)
  if stages_through not in STAGES:
    raise ValueError(f"stages_through: expected one of {STAGES}, got {stages_through!r}")
  workdir = str(workdir)
  log_environment()
  lead = parallel.process_index() == 0
  mutable = benchmark_config.RESULT_FIELDS
  if lead:
    bw.check_same_config(workdir, config, mutable, benchmark_config.FIELDS_BEFORE)
  parallel.barrier("salijax-benchmark-config")
  if not lead:
    bw.check_same_config(workdir, config, mutable, benchmark_config.FIELDS_BEFORE)
  workdir_completeness.check_complete(workdir, benchmark_config.runs(config), STAGES)
  ctx = stage_context.Context(
      config, workdir, benchmark_config.runs(config), progress=progress,
      unit_stages={name: stage for name, (stage, _) in _TABLE.items()
                   if isinstance(stage, batch_units.UnitStage)})
  for name in STAGES[:STAGES.index(stages_through) + 1]:
    done = bw.stage_done(workdir, name)
    fields = benchmark_config.STAGE_FIELDS.get(name, ())
    if done is not None and not bw.done_matches(done, config, fields,
                                                benchmark_config.RESULT_FIELDS_BEFORE):
      logging.info("stage %s: done with other %s; running it again", name, ", ".join(fields))
      done = None
    if done is not None:
      logging.info("stage %s: already done (%.1f s), skipped", name, done["seconds"])
      ctx.stage_seconds[name] = done["seconds"]
      continue
    start = time.perf_counter()
    stage, lead_only = _TABLE[name]
    summary = stage(ctx) if lead or not lead_only else {}
    parallel.barrier(f"salijax-benchmark-{name}")
    ctx.stage_seconds[name] = time.perf_counter() - start
    if lead:
      used = {"config": bw.config_part(config, fields)} if fields else {}
      bw.mark_done(workdir, name, {"seconds": ctx.stage_seconds[name], **summary, **used})
      logging.info("stage %s: done in %.1f s %s", name, ctx.stage_seconds[name], summary or "")
    parallel.barrier(f"salijax-benchmark-{name}-done")
  records = ctx.all_records() if bw.stage_done(workdir, "train") is not None else {}
  if lead:
    logging.info("stage seconds: %s; report in %s",
                 {k: round(v, 1) for k, v in ctx.stage_seconds.items()},
                 pathlib.Path(workdir) / "report")
  return {"stage_seconds": dict(ctx.stage_seconds), "runs": records,
          "report_dir": str(pathlib.Path(workdir) / "report")}
