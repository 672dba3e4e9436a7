"""The unit loop shared by the predict, explanation and evaluation stages.

A method unit is (run, method, label mode, perturbation, batch): one method's
maps, or their metrics, for one batch of the evaluation set under one trained
model, explaining the class of one label mode on the clean ("none") or
perturbed images. A prediction unit is (run, batch). The units of a stage
are listed in a fixed order and shared out over the JAX processes
(`salijax.parallel.process_share`); each unit writes its file
(<stage>/<run>/<method>/<label_mode>/<perturbation>/batch_NNNNN.npz for a method
unit) atomically, and a unit whose file exists is skipped, so a killed stage
resumes where it stopped.
"""

import pathlib
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import ml_collections
import numpy as np

from salijax import models, parallel
from salijax.pipeline import benchmark_workdir as bw
from salijax.pipeline import evaluation_set, trained_models
from salijax.pipeline.benchmark_config import Run, label_modes, method_names, perturbation_names


class Unit(NamedTuple):
  """One method unit (see the module doc)."""

  run: Run
  method: str
  label_mode: str
  perturbation: str  # "none": the clean images
  batch: int


def units(config: ml_collections.ConfigDict, runs: Sequence[Run],
          eval_set: evaluation_set.EvaluationSet) -> list[Unit]:
  """Every method unit of a stage, in a fixed order (run, method, label mode, perturbation,
  batch)."""
  num_batches = len(eval_set.batch_indices(config.batch_size))
  return [Unit(run, method, label_mode, perturbation, b)
          for run in runs for method in method_names(config)
          for label_mode in label_modes(config) for perturbation in perturbation_names(config)
          for b in range(num_batches)]


def unit_path(workdir: str, stage: str, unit: Unit) -> pathlib.Path:
  """<stage>/<run>/<method>/<label_mode>/<perturbation>/batch_NNNNN.npz."""
  return bw.batch_path(workdir, stage, unit.run.name, unit.method, unit.label_mode,
                       unit.perturbation, batch=unit.batch)


# (classifier, batch from `evaluation_set.eval_batch`, unit) -> the unit file's arrays.
UnitWork = Callable[[Any, dict[str, np.ndarray], Any], dict[str, np.ndarray]]


def run_units(config: ml_collections.ConfigDict, workdir: str,
              eval_set: evaluation_set.EvaluationSet, bar: Any, all_units: Sequence[Any],
              path: Callable[[Any], pathlib.Path], work: UnitWork) -> None:
  """Does this process's share of `all_units` that have no file yet.

  Args:
    config: the benchmark config.
    workdir: the benchmark workdir.
    eval_set: the evaluation set.
    bar: a `stage_progress` bar, counted in images.
    all_units: every unit of the stage, in its fixed order; each has `.run`
      and `.batch` (`Unit`, or a prediction unit).
    path: a unit's file.
    work: computes a unit's arrays; models are loaded one at a time, in unit order.
  """
  mine = [all_units[i] for i in parallel.process_share(len(all_units))]
  todo = [u for u in mine if not path(u).exists()]
  positions = eval_set.batch_indices(config.batch_size)
  total = sum(len(positions[u.batch]) for u in mine)
  bar.reset(total=total)
  bar.update(total - sum(len(positions[u.batch]) for u in todo))
  source = evaluation_set.load_source(config, config.eval_split) if todo else None
  loaded_name, clf = None, None
  for unit in todo:
    if unit.run.name != loaded_name:
      clf = None  # one model in memory at a time
      module, variables, _ = trained_models.load_run(workdir, unit.run)
      loaded_name, clf = unit.run.name, models.classifier(module, variables)
    batch = evaluation_set.eval_batch(config, source, eval_set, positions[unit.batch],
                                      config.batch_size)
    bw.save_arrays(path(unit), work(clf, batch, unit))
    bar.update(len(positions[unit.batch]))
