"""The check that a benchmark workdir holds what its finished stages promise to later ones.

A stage marked done (<stage>/DONE.json) is skipped, so what it wrote must be
there: a workdir copied in part, or with files deleted by hand, would
otherwise fail later with a bare FileNotFoundError or, worse, mix results of
different models. `check_complete` runs before any stage and raises an
`IncompleteWorkdirError` saying what is missing and how to recover when

- a stage is marked done but the data or train stage before it is not (the
  later one was made from an evaluation set or models that are gone, and
  would be made again, perhaps other);
- the data stage is marked done without data/eval_set.json, or the train
  stage without a run's models/<run>.json and models/<run>.msgpack (later
  stages read these and do not make them again).

The unit stages (perturb ... sanity) need neither check: a missing or
unreadable batch file is computed again, the same, when read
(`batch_units.read`), so one of them may be run again on its own by
deleting its DONE.json while later ones stay done.
"""

import os
import pathlib
from collections.abc import Sequence

from salijax.pipeline import benchmark_workdir as bw
from salijax.pipeline import evaluation_set, trained_models
from salijax.pipeline.benchmark_config import Run

MADE_ONCE = ("data", "train")  # the stages whose outputs later stages read, never make again


class IncompleteWorkdirError(ValueError):
  """A workdir whose finished stages lack what later stages read (module doc)."""


def _outputs(workdir: str, stage: str, runs: Sequence[Run]) -> list[pathlib.Path]:
  """The files of a finished `stage` that later stages read and never make again."""
  if stage == "data":
    return [evaluation_set.path(workdir)]
  if stage == "train":
    return [path for run in runs for path in trained_models.paths(workdir, run)]
  return []


def _rerun_advice(workdir: str, stages: Sequence[str], first: str) -> str:
  """How to run the stages from `first` again: delete their DONE.json files."""
  done = [s for s in stages[stages.index(first):] if bw.stage_done(workdir, s) is not None]
  paths = " ".join(str(bw.done_path(workdir, s)) for s in done)
  return (f"rerun from the {first} stage: delete the DONE.json of {', '.join(done)} "
          f"(rm {paths}) and run the benchmark again; the parts already computed (train/<run>/ "
          "trainings, batch files) are read back, not recomputed")


def check_complete(workdir: str | os.PathLike, runs: Sequence[Run],
                   stages: Sequence[str]) -> None:
  """Raises IncompleteWorkdirError if the finished `stages` (in pipeline order) of `workdir`
  lack an earlier stage or a file later stages read (module doc)."""
  workdir = str(workdir)
  done = [bw.stage_done(workdir, stage) is not None for stage in stages]
  for i, stage in enumerate(stages):
    if done[i]:
      missing = [p for p in _outputs(workdir, stage, runs) if not p.exists()]
      if missing:
        names = ", ".join(str(p.relative_to(workdir)) for p in missing)
        raise IncompleteWorkdirError(
            f"workdir {workdir} is incomplete: the {stage} stage is marked done "
            f"({stage}/DONE.json) but {names} {'is' if len(missing) == 1 else 'are'} missing "
            f"(a workdir copied in part?). Copy {'them' if len(missing) > 1 else 'it'} from the "
            f"original workdir, or {_rerun_advice(workdir, stages, stage)}.")
      continue
    if stage not in MADE_ONCE:
      continue
    later = [s for s, d in zip(stages[i + 1:], done[i + 1:], strict=True) if d]
    if later:
      raise IncompleteWorkdirError(
          f"workdir {workdir} is incomplete: the {', '.join(later)} "
          f"{'stage is' if len(later) == 1 else 'stages are'} marked done but the {stage} stage "
          f"before {'it' if len(later) == 1 else 'them'} is not (no {stage}/DONE.json; a "
          f"workdir copied in part?). Copy {stage}/ (and models/ for the train stage) from "
          f"the original workdir, or {_rerun_advice(workdir, stages, stage)}.")
