"""The training curves of the benchmark's runs: loss and accuracy against epochs.

From each run's metrics.jsonl (`salijax.train.metrics_writer`: "train"
records of the mean loss and accuracy since the previous one, "eval" records
of a split), two panels, loss and accuracy, with one colour per run: the
train records as a line, the eval records as markers (one marker shape per
split). Records of other kinds are ignored, runs without train or eval
records are left out, and a figure without any says "no training logs".

    logs = {f"{model}/{mode}": metrics_writer.read_metrics(train_dir) for ...}
    training_figure(report_dir / "training.png", logs)
"""

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

from salijax.report import plotting

KINDS = ("train", "eval")
FIELDS = ("epoch", "loss", "accuracy")
EVAL_MARKERS = ("o", "s", "^", "D", "v")


def _points(run: str, records: Any) -> dict[tuple[str, str], list[tuple[float, ...]]]:
  """(kind, split) -> [(epoch, loss, accuracy)] sorted by epoch, or ValueError/TypeError."""
  if isinstance(records, (str, bytes)) or not isinstance(records, Sequence):
    raise TypeError(f"logs[{run!r}] must be a sequence of metrics.jsonl records, got"
                    f" {type(records).__name__}")
  points: dict[tuple[str, str], list[tuple[float, ...]]] = {}
  for index, record in enumerate(records):
    if not isinstance(record, Mapping):
      raise TypeError(f"logs[{run!r}][{index}] must be a mapping, got {type(record).__name__}")
    kind = record.get("kind")
    if kind not in KINDS:
      continue
    values = [record.get(field) for field in FIELDS]
    if any(isinstance(value, bool) or not isinstance(value, (int, float)) for value in values):
      raise ValueError(f"logs[{run!r}][{index}] ({kind}) needs numbers {list(FIELDS)}, got"
                       f" {dict(zip(FIELDS, values, strict=True))}")
    split = str(record.get("split", "eval")) if kind == "eval" else ""
    points.setdefault((kind, split), []).append(tuple(float(value) for value in values))
  return {key: sorted(series) for key, series in points.items()}


def training_figure(path: str | os.PathLike, logs: Mapping[str, Sequence[Mapping[str, Any]]]
                    ) -> None:
  """Draws the loss and accuracy panels (module doc) and saves them as a PNG at `path`.

  Args:
    path: the .png file.
    logs: run name (e.g. "resnet18/scratch") -> that run's metrics.jsonl
      records, {"kind": "train" or "eval", "epoch", "loss", "accuracy", ...}
      ("split" for eval records).

  Raises:
    TypeError: logs not a mapping, records not a sequence of mappings.
    ValueError: a train or eval record without a number for epoch, loss or
      accuracy (the run and the record index are named).
  """
  if not isinstance(logs, Mapping):
    raise TypeError(f"logs must be a mapping run -> records, got {type(logs).__name__}")
  runs = {str(run): _points(str(run), records) for run, records in logs.items()}
  runs = {run: points for run, points in runs.items() if points}
  plt = plotting.pyplot()
  from matplotlib.lines import Line2D  # noqa: PLC0415 - after pyplot selected the backend.

  if not runs:
    figure, ax = plt.subplots(figsize=(5.0, 2.0))
    ax.text(0.5, 0.5, "no training logs", ha="center", va="center", fontsize=12)
    ax.set_axis_off()
    plotting.save_figure(figure, path)
    return

  splits = list(dict.fromkeys(split for points in runs.values() for kind, split in points
                              if kind == "eval"))
  markers = {split: EVAL_MARKERS[index % len(EVAL_MARKERS)] for index, split in enumerate(splits)}
  colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
  figure, axes = plt.subplots(1, 2, figsize=(11.0, 4.0), layout="constrained")
  for index, points in enumerate(runs.values()):
    color = colors[index % len(colors)]
    for (kind, split), series in points.items():
      epochs = [point[0] for point in series]
      for ax, column in zip(axes, (1, 2), strict=True):
        values = [point[column] for point in series]
        if kind == "train":
          ax.plot(epochs, values, color=color, linewidth=1.6)
        else:
          ax.plot(epochs, values, color=color, linestyle="none", marker=markers[split],
                  markersize=6, markeredgecolor="black", markeredgewidth=0.6)
  for ax, name in zip(axes, ("loss", "accuracy"), strict=True):
    ax.set_xlabel("epoch")
    ax.set_ylabel(name)
    ax.set_title(name, fontsize=11)
    ax.grid(alpha=0.3)
  accuracies = [point[2] for points in runs.values() for series in points.values()
                for point in series if math.isfinite(point[2])]
  axes[1].set_ylim(min([0.0, *accuracies]) - 0.02, max([1.0, *accuracies]) + 0.02)
  handles = [Line2D([], [], color=colors[index % len(colors)], linewidth=2.5, label=run)
             for index, run in enumerate(runs)]
  handles.append(Line2D([], [], color="0.3", linewidth=1.6, label="train"))
  handles += [Line2D([], [], color="0.3", linestyle="none", marker=markers[split],
                     markeredgecolor="black", markeredgewidth=0.6, label=f"eval: {split}")
              for split in splits]
  figure.legend(handles=handles, loc="outside right upper", fontsize=8)
  plotting.save_figure(figure, path)
