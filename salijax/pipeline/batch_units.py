"""The unit loop shared by the explanation and evaluation stages.

A unit is (run, method, batch): one method's maps, or their metrics, for one
batch of the evaluation set under one trained model. The units are listed in a
fixed order and shared out over the JAX processes (`salijax.parallel.process_share`);
each unit writes <stage>/<run>/<method>/batch_NNNNN.npz atomically, and a unit
whose file exists is skipped, so a killed stage resumes where it stopped.
"""

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import ml_collections
import numpy as np

from salijax import models, parallel
from salijax.pipeline import benchmark_workdir as bw
from salijax.pipeline import evaluation_set, trained_models
from salijax.pipeline.benchmark_config import Run, method_names


class Unit(NamedTuple):
  """One unit of work (see the module doc)."""

  run: Run
  method: str
  batch: int


def units(config: ml_collections.ConfigDict, runs: Sequence[Run],
          eval_set: evaluation_set.EvaluationSet) -> list[Unit]:
  """Every unit of a stage, in a fixed order."""
  num_batches = len(eval_set.batch_indices(config.batch_size))
  return [Unit(run, method, b) for run in runs for method in method_names(config)
          for b in range(num_batches)]


# (classifier, batch from `evaluation_set.eval_batch`, unit) -> the unit file's arrays.
UnitWork = Callable[[Any, dict[str, np.ndarray], Unit], dict[str, np.ndarray]]


def run_units(config: ml_collections.ConfigDict, workdir: str, stage: str,
              runs: Sequence[Run], eval_set: evaluation_set.EvaluationSet, bar: Any,
              work: UnitWork) -> None:
  """Does this process's share of the units of `stage` that have no file yet.

  Args:
    config: the benchmark config.
    workdir: the benchmark workdir.
    stage: the workdir subdirectory the unit files go to ("explain", "evaluate").
    runs: the trained runs.
    eval_set: the evaluation set.
    bar: a `stage_progress` bar, counted in images.
    work: computes a unit's arrays; models are loaded one at a time, in unit order.
  """
  all_units = units(config, runs, eval_set)
  mine = [all_units[i] for i in parallel.process_share(len(all_units))]
  todo = [u for u in mine if not bw.batch_path(workdir, stage, u.run.name, u.method,
                                               u.batch).exists()]
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
    arrays = work(clf, batch, unit)
    bw.save_arrays(bw.batch_path(workdir, stage, unit.run.name, unit.method, unit.batch),
                   arrays)
    bar.update(len(positions[unit.batch]))
