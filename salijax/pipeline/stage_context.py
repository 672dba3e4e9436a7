"""`Context`: what every benchmark stage gets, and what the stages read only once.

A stage is a function `stage(ctx) -> dict` (the summary its DONE.json stores;
`salijax.pipeline.benchmark` has the table). The context carries the config,
workdir, runs and local device mesh, and reads each run record
(models/<run>.json) and data/eval_set.json at most once per `run_benchmark`.
It keeps one trained model and one evaluation batch in memory, the last ones
asked for (units come in run order; a batch is a run's, its images resampled
with the run's interpolation, `benchmark_config.eval_interpolation`), and it
knows the unit stages by name, so that any stage reads any unit through
`batch_units.read`.
"""

import contextlib
import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

import ml_collections
import numpy as np
from jax.sharding import Mesh

from salijax import data, models, parallel
from salijax.classifier import Classifier
from salijax.compute_dtype import with_compute_dtype
from salijax.pipeline import evaluation_set, stage_progress, trained_models
from salijax.pipeline.benchmark_config import Run, eval_interpolation
from salijax.progress import Progress


class TrainedModel(NamedTuple):
  """A run's exported model: the module and variables, and their Classifier, whose forwards
  run in config.compute_dtype (`salijax.compute_dtype`)."""

  module: Any
  variables: Any
  classifier: Classifier


def _cache() -> Any:
  return dataclasses.field(default=None, init=False, repr=False)


@dataclasses.dataclass
class Context:
  """The benchmark's config and workdir, with what the stages read once (module doc)."""

  config: ml_collections.ConfigDict
  workdir: str
  runs: tuple[Run, ...]
  unit_stages: Mapping[str, Any]  # name -> batch_units.UnitStage
  progress: bool = True  # progress bars (process 0 only)
  stage_seconds: dict[str, float] = dataclasses.field(default_factory=dict)  # so far
  mesh: Mesh = dataclasses.field(default_factory=parallel.local_mesh)
  records: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)  # run name ->
  # Read once, or the last one asked for.
  _eval_set: evaluation_set.EvaluationSet | None = _cache()
  _source: data.Source | None = _cache()
  _model: tuple[str, TrainedModel] | None = _cache()
  _batch: tuple[tuple[tuple[int, ...], int, str], dict[str, np.ndarray]] | None = _cache()

  @property
  def lead(self) -> bool:
    """Whether this is process 0 (the data and report stages, the progress bars)."""
    return parallel.process_index() == 0

  def record(self, run: Run) -> dict[str, Any]:
    """models/<run>.json (`trained_models.load_run_record`), read once."""
    if run.name not in self.records:
      self.records[run.name] = trained_models.load_run_record(self.workdir, run)
    return self.records[run.name]

  def all_records(self) -> dict[str, dict[str, Any]]:
    """{run name: record} of every run, in run order."""
    return {run.name: self.record(run) for run in self.runs}

  def eval_set(self) -> evaluation_set.EvaluationSet:
    """data/eval_set.json (the data stage's), read once."""
    if self._eval_set is None:
      self._eval_set = evaluation_set.read(self.workdir)
    return self._eval_set

  def model(self, run: Run) -> TrainedModel:
    """`run`'s trained model; loading another run's drops the one in memory."""
    if self._model is None or self._model[0] != run.name:
      self._model = None  # one model in memory at a time
      module, variables = trained_models.load_run(self.workdir, run, self.record(run))
      classifier = with_compute_dtype(models.classifier(module, variables),
                                      self.config.compute_dtype)
      self._model = run.name, TrainedModel(module, variables, classifier)
    return self._model[1]

  def batch(self, positions: np.ndarray, size: int, run: Run) -> dict[str, np.ndarray]:
    """`evaluation_set.eval_batch` of `positions` padded to `size`, as `run`'s model sees them
    (its `eval_interpolation`); the last one is kept."""
    interpolation = eval_interpolation(self.config, run)
    key = tuple(int(p) for p in positions), size, interpolation
    if self._batch is None or self._batch[0] != key:
      if self._source is None:
        self._source = evaluation_set.load_source(self.config, self.config.eval_split)
      self._batch = key, evaluation_set.eval_batch(self.config, self._source, self.eval_set(),
                                                   np.asarray(positions), size, interpolation)
    return self._batch[1]

  @contextlib.contextmanager
  def progress_bar(self, stage: str, unit: str = "img") -> Iterator[Progress]:
    """The stage's `stage_progress` bar (total 0: the stage sets it), shown by process 0."""
    with stage_progress.stage_progress(stage, total=0, unit=unit,
                                       enabled=self.progress and self.lead) as bar:
      yield bar
