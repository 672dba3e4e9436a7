"""Training logs: JSON lines (metrics.jsonl) and TensorBoard event files.

Each line of metrics.jsonl is one JSON object with a "step" (updates done):

  {"kind": "train", "step", "epoch", "loss", "accuracy", "learning_rate", "images_per_sec"}
  {"kind": "eval", "step", "epoch", "split", "loss", "accuracy"}

`epoch` is the fractional number of epochs done (step / steps_per_epoch).
Resuming truncates: lines with a step after the restored checkpoint's step
(written by the interrupted run, about to be recomputed) are removed before
the file is appended to again, so the file stays step-ordered without
duplicates. TensorBoard gets the same scalars ("train/loss",
"eval/<split>/accuracy", ...) and a `purge_step`, which hides the events the
interrupted run wrote after the restored step.
"""

import json
import os
from typing import Any

import tensorboardX

from salijax import atomic_files
from salijax.train import workdir as workdir_lib


def read_metrics(workdir: str | os.PathLike) -> list[dict[str, Any]]:
  """The records of metrics.jsonl; a partially written last line is skipped."""
  path = workdir_lib.metrics_path(workdir)
  if not path.exists():
    return []
  records = []
  for line in path.read_text().splitlines():
    try:
      records.append(json.loads(line))
    except json.JSONDecodeError:
      continue  # A line cut short by a kill; the resumed run rewrites it.
  return records


class MetricsWriter:
  """Appends metrics to metrics.jsonl and TensorBoard, after truncating to `resume_step`."""

  def __init__(self, workdir: str | os.PathLike, *, resume_step: int):
    kept = [r for r in read_metrics(workdir) if r["step"] <= resume_step]
    path = workdir_lib.metrics_path(workdir)
    atomic_files.write_text_atomic(path, "".join(json.dumps(r) + "\n" for r in kept))
    self._jsonl = open(path, "a")  # noqa: SIM115 - closed in close().
    self._tensorboard = tensorboardX.SummaryWriter(
        str(workdir_lib.tensorboard_dir(workdir)), purge_step=resume_step + 1)

  def _write(self, record: dict[str, Any], scalars: dict[str, float]) -> None:
    self._jsonl.write(json.dumps(record) + "\n")
    self._jsonl.flush()
    for name, value in scalars.items():
      self._tensorboard.add_scalar(name, value, global_step=record["step"])

  def write_train(self, *, step: int, epoch: float, loss: float, accuracy: float,
                  learning_rate: float, images_per_sec: float) -> None:
    """Logs the mean train loss/accuracy of the steps since the previous train line."""
    values = {"loss": loss, "accuracy": accuracy, "learning_rate": learning_rate,
              "images_per_sec": images_per_sec}
    self._write({"kind": "train", "step": step, "epoch": epoch, **values},
                {f"train/{name}": value for name, value in values.items()})

  def write_eval(self, *, step: int, epoch: float, split: str, loss: float,
                 accuracy: float) -> None:
    """Logs an evaluation on `split` after `step` updates."""
    values = {"loss": loss, "accuracy": accuracy}
    self._write({"kind": "eval", "step": step, "epoch": epoch, "split": split, **values},
                {f"eval/{split}/{name}": value for name, value in values.items()})

  def close(self) -> None:
    self._jsonl.close()
    self._tensorboard.close()
