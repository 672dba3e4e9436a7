"""The unit loop shared by the perturb, predict, explain, evaluate and sanity stages.

A unit is one file of a stage, a NamedTuple whose first field is the run:

  PerturbationUnit (run, perturbation, batch)   perturb/<run>/<perturbation>/batch_NNNNN.npz
  BatchUnit (run, batch)                        predict/<run>/batch_NNNNN.npz
  Unit (run, method, label mode, perturbation, batch)
      explain|evaluate/<run>/<method>/<label_mode>/<perturbation>/batch_NNNNN.npz
  SanityUnit (run, method)                      sanity/<run>/<method>.npz

(`unit_path`: the fields after the run name the folders, the batch the file).
A `UnitStage` lists its units in a fixed order and shares them out over the
JAX processes (`salijax.parallel.process_share`); each unit is computed from
its run's model and its batch of the evaluation set and written atomically,
and a unit whose file exists is skipped (unless the stage's `current` says
the file is out of date: the evaluate stage's extra metrics), so a killed
stage resumes where it stopped. Every stage reads other units through `read`: a unit whose file
cannot be read (missing, truncated, corrupt) is named in a warning, computed
again and rewritten.
"""

import dataclasses
import pathlib
import zipfile
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np
from absl import logging

from salijax import parallel
from salijax.pipeline import benchmark_workdir as bw
from salijax.pipeline.benchmark_config import Run, label_modes, method_names, perturbation_names
from salijax.pipeline.stage_context import Context, TrainedModel


class PerturbationUnit(NamedTuple):
  """The perturbed images of one batch under one run (FGSM attacks the run's model)."""

  run: Run
  perturbation: str
  batch: int


class BatchUnit(NamedTuple):
  """One batch of the evaluation set under one run."""

  run: Run
  batch: int


class Unit(NamedTuple):
  """One method's maps, or their metrics, for one batch, label mode and perturbation."""

  run: Run
  method: str
  label_mode: str
  perturbation: str  # "none": the clean images
  batch: int


class SanityUnit(NamedTuple):
  """One method's sanity check under one run, on the first images."""

  run: Run
  method: str


def unit_path(workdir: str, stage: str, unit: NamedTuple) -> pathlib.Path:
  """<stage>/<run>/<the other fields>/batch_NNNNN.npz, or <stage>/<run>/<...>/<last>.npz for a
  unit without a batch."""
  fields = unit._asdict()
  run = fields.pop("run")
  if "batch" in fields:
    batch = fields.pop("batch")
    return bw.batch_path(workdir, stage, run.name, *map(str, fields.values()), batch=batch)
  *folders, name = map(str, fields.values())
  return bw.run_dir(workdir, stage, run.name).joinpath(*folders) / f"{name}.npz"


def num_batches(ctx: Context) -> int:
  """How many batches of config.batch_size the evaluation set has (the last may be short)."""
  return len(ctx.eval_set().batch_indices(ctx.config.batch_size))


def method_units(ctx: Context) -> list[Unit]:
  """Every method unit of the explain and evaluate stages, in a fixed order (run, batch,
  method, label mode, perturbation): a batch's units follow each other, so the context
  loads each evaluation batch once, not once per unit."""
  config = ctx.config
  return [Unit(run, method, label_mode, perturbation, b)
          for run in ctx.runs for b in range(num_batches(ctx))
          for method in method_names(config) for label_mode in label_modes(config)
          for perturbation in perturbation_names(config)]


def batch_images(ctx: Context, unit: Any) -> tuple[np.ndarray, int]:
  """The positions of `unit.batch` in the evaluation set, and the padded batch size."""
  return ctx.eval_set().batch_indices(ctx.config.batch_size)[unit.batch], ctx.config.batch_size


# (context, the run's model, the run's batch from `Context.batch`, unit) -> the unit's arrays.
UnitWork = Callable[[Context, TrainedModel, dict[str, np.ndarray], Any], dict[str, np.ndarray]]


@dataclasses.dataclass(frozen=True)
class UnitStage:
  """A stage made of units; `stage(ctx)` does this process's share of the missing ones."""

  name: str
  units: Callable[[Context], Sequence[Any]]  # every unit of the stage, in a fixed order
  work: UnitWork
  # A unit's images: (positions into the evaluation set, padded batch size).
  images: Callable[[Context, Any], tuple[np.ndarray, int]] = batch_images
  # Whether a unit's file is up to date; None: whether it exists.
  current: Callable[[Context, Any], bool] | None = None

  def is_current(self, ctx: Context, unit: Any) -> bool:
    """Whether `unit` needs no computing: its file exists (and `current` says it is up to
    date)."""
    if self.current is not None:
      return self.current(ctx, unit)
    return unit_path(ctx.workdir, self.name, unit).exists()

  def compute(self, ctx: Context, unit: Any) -> dict[str, np.ndarray]:
    """Computes `unit` and writes its file; returns its arrays."""
    positions, size = self.images(ctx, unit)
    arrays = self.work(ctx, ctx.model(unit.run), ctx.batch(positions, size, unit.run), unit)
    bw.save_arrays(unit_path(ctx.workdir, self.name, unit), arrays)
    return arrays

  def __call__(self, ctx: Context) -> dict[str, Any]:
    """This process's share of the units that have no (current) file yet; the progress line
    counts images (those of units done before as done, not in the rate). Returns {} (no
    summary)."""
    all_units = self.units(ctx)
    mine = [all_units[i] for i in parallel.process_share(len(all_units))]
    todo = [u for u in mine if not self.is_current(ctx, u)]
    count = {u: len(self.images(ctx, u)[0]) for u in mine}
    with ctx.progress_bar(self.name) as bar:
      bar.reset(sum(count.values()), initial=sum(count.values()) - sum(count[u] for u in todo))
      for unit in todo:
        self.compute(ctx, unit)
        bar.update(count[unit])
    return {}


def read(ctx: Context, stage: str, unit: Any) -> dict[str, np.ndarray]:
  """The arrays of `stage`'s `unit`; one whose file cannot be read is named in a warning and
  computed again (module doc)."""
  path = unit_path(ctx.workdir, stage, unit)
  try:
    return bw.load_arrays(path)
  except (OSError, EOFError, ValueError, zipfile.BadZipFile) as error:
    logging.warning("%s: cannot be read (%s: %s); computing it again", path,
                    type(error).__name__, error)
  return ctx.unit_stages[stage].compute(ctx, unit)
