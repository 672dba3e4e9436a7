"""The files of a training workdir, and the check that a restart continues the same run.

  workdir/run.json             config, num_classes, class_names, steps_per_epoch
  workdir/checkpoints/latest/  orbax steps of the full training state
  workdir/checkpoints/best/    orbax steps of the model variables, best eval accuracy
  workdir/metrics.jsonl        one JSON line per logged train step and per eval
  workdir/tensorboard/         TensorBoard event files
  workdir/results.json         final metrics, written when the run completes

A restart with the same workdir resumes the run recorded in run.json; a
config that differs in any field other than `RUN_CONTROL_FIELDS` (which do not
change the trajectory) is refused.
"""

import json
import os
import pathlib
from typing import Any

import ml_collections

from salijax.atomic_files import write_json_atomic

RUN_CONTROL_FIELDS = ("log_every_steps", "checkpoint_every_steps", "progress_bar",
                      "data_dir")


def run_record_path(workdir: str | os.PathLike) -> pathlib.Path:
  return pathlib.Path(workdir) / "run.json"


def checkpoint_dir(workdir: str | os.PathLike, which: str) -> pathlib.Path:
  """workdir/checkpoints/`which` ("latest" or "best")."""
  return pathlib.Path(workdir) / "checkpoints" / which


def metrics_path(workdir: str | os.PathLike) -> pathlib.Path:
  return pathlib.Path(workdir) / "metrics.jsonl"


def tensorboard_dir(workdir: str | os.PathLike) -> pathlib.Path:
  return pathlib.Path(workdir) / "tensorboard"


def results_path(workdir: str | os.PathLike) -> pathlib.Path:
  return pathlib.Path(workdir) / "results.json"


def config_as_json(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """The config as plain JSON values (tuples become lists), for storing and comparing."""
  return json.loads(json.dumps(config.to_dict()))


def check_same_run(workdir: str | os.PathLike, config: ml_collections.ConfigDict) -> bool:
  """Whether `workdir` already holds this run; raises if it holds a different one.

  Returns:
    True if run.json exists and matches `config` (outside `RUN_CONTROL_FIELDS`),
    False if the workdir holds no run (no run.json and no checkpoint).

  Raises:
    ValueError: run.json records a different config (the message lists the
      differing fields), or checkpoints exist without a run.json.
  """
  path = run_record_path(workdir)
  if not path.exists():
    if checkpoint_dir(workdir, "latest").exists() and any(
        checkpoint_dir(workdir, "latest").iterdir()):
      raise ValueError(
          f"workdir: {workdir} holds checkpoints but no run.json, so they cannot be "
          "checked against the config; use an empty workdir")
    return False
  recorded = json.loads(path.read_text())["config"]
  current = config_as_json(config)
  differing = sorted(
      key for key in set(recorded) | set(current)
      if key not in RUN_CONTROL_FIELDS and recorded.get(key) != current.get(key))
  if differing:
    details = "; ".join(
        f"{key}: workdir has {recorded.get(key)!r}, config has {current.get(key)!r}"
        for key in differing)
    raise ValueError(
        f"workdir: {workdir} holds a run with a different config ({details}); "
        "use another workdir to start a new run")
  return True


def write_run_record(workdir: str | os.PathLike, config: ml_collections.ConfigDict, *,
                     num_classes: int, class_names: list[str],
                     steps_per_epoch: int) -> None:
  """Writes run.json (atomically)."""
  write_json_atomic(run_record_path(workdir), {
      "config": config_as_json(config),
      "num_classes": num_classes,
      "class_names": list(class_names),
      "steps_per_epoch": steps_per_epoch,
  })


def read_run_record(workdir: str | os.PathLike) -> dict[str, Any]:
  """The content of run.json: {"config", "num_classes", "class_names", "steps_per_epoch"}."""
  path = run_record_path(workdir)
  if not path.exists():
    raise ValueError(f"workdir: no training run in {workdir} (missing {path.name})")
  return json.loads(path.read_text())
