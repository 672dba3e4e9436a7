"""Tests of salijax.report.training_figure."""

import numpy as np
import PIL.Image
import pytest

from salijax.report import plotting
from salijax.report.training_figure import training_figure


def make_records(epochs=6, steps_per_epoch=4, splits=("validation",)):
  """metrics.jsonl records, train every step and eval every 2 epochs, out of order."""
  records = [{"kind": "checkpoint", "step": 0}]  # another kind: ignored
  for step in range(1, epochs * steps_per_epoch + 1):
    epoch = step / steps_per_epoch
    records.append({"kind": "train", "step": step, "epoch": epoch, "loss": 2.0 / (1 + epoch),
                    "accuracy": 1 - 0.9 / (1 + epoch), "learning_rate": 0.1,
                    "images_per_sec": 100.0})
    if step % (2 * steps_per_epoch) == 0:
      for index, split in enumerate(splits):
        records.append({"kind": "eval", "step": step, "epoch": epoch, "split": split,
                        "loss": 2.5 / (1 + epoch) + index, "accuracy": 0.8 - 0.1 * index})
  return records[::-1]


def png_size(path):
  with PIL.Image.open(path) as image:
    assert image.format == "PNG"
    return image.size


def test_writes_a_wide_png(tmp_path):
  path = tmp_path / "training.png"
  training_figure(path, {"resnet18/scratch": make_records(), "vgg11/finetune": make_records(3)})
  width, height = png_size(path)
  assert width > 2 * height


def test_train_lines_and_eval_markers_per_run(monkeypatch, tmp_path):
  drawn = []
  monkeypatch.setattr(plotting, "save_figure", lambda figure, path: drawn.append(figure))
  logs = {"a/scratch": make_records(6, splits=("validation", "test")), "empty": [],
          "b/finetune": make_records(4)}
  training_figure(tmp_path / "training.png", logs)
  (figure,) = drawn
  legend = figure.legends[0]
  labels = [text.get_text() for text in legend.get_texts()]
  assert labels[:3] == ["a/scratch", "b/finetune", "train"]
  assert sorted(labels[3:]) == ["eval: test", "eval: validation"]
  split_markers = {label.removeprefix("eval: "): handle.get_marker()
                   for label, handle in zip(labels, legend.legend_handles, strict=True)
                   if label.startswith("eval: ")}
  assert len(set(split_markers.values())) == 2  # one shape per split
  loss_ax, accuracy_ax = figure.axes
  assert (loss_ax.get_ylabel(), accuracy_ax.get_ylabel()) == ("loss", "accuracy")
  for ax, field in ((loss_ax, "loss"), (accuracy_ax, "accuracy")):
    lines = ax.get_lines()
    train = [line for line in lines if line.get_linestyle() == "-"]
    markers = [line for line in lines if line.get_linestyle() == "None"]
    assert len(train) == 2 and len(markers) == 3  # a: 2 splits, b: 1
    assert train[0].get_color() != train[1].get_color()
    for line, run in zip(train, ("a/scratch", "b/finetune"), strict=True):
      records = sorted((r for r in logs[run] if r["kind"] == "train"), key=lambda r: r["step"])
      np.testing.assert_allclose(line.get_xdata(), [r["epoch"] for r in records])
      np.testing.assert_allclose(line.get_ydata(), [r[field] for r in records])
    for run, color, split in (("a/scratch", train[0].get_color(), "validation"),
                              ("a/scratch", train[0].get_color(), "test"),
                              ("b/finetune", train[1].get_color(), "validation")):
      (line,) = [line for line in markers if line.get_color() == color
                 and line.get_marker() == split_markers[split]]
      records = sorted((r for r in logs[run] if r.get("split") == split), key=lambda r: r["step"])
      np.testing.assert_allclose(line.get_xdata(), [r["epoch"] for r in records])
      np.testing.assert_allclose(line.get_ydata(), [r[field] for r in records])
  plotting.pyplot().close(figure)


def test_no_records_says_so(monkeypatch, tmp_path):
  training_figure(tmp_path / "empty.png", {})
  assert min(png_size(tmp_path / "empty.png")) > 0
  drawn = []
  monkeypatch.setattr(plotting, "save_figure", lambda figure, path: drawn.append(figure))
  training_figure(tmp_path / "empty.png", {"a": [], "b": [{"kind": "checkpoint"}]})
  (figure,) = drawn
  assert [text.get_text() for ax in figure.axes for text in ax.texts] == ["no training logs"]
  plotting.pyplot().close(figure)


@pytest.mark.parametrize("logs, error, pattern", [
    ([make_records()], TypeError, "logs must be a mapping"),
    ({"a": "records"}, TypeError, r"logs\['a'\]"),
    ({"a": [["train"]]}, TypeError, r"logs\['a'\]\[0\]"),
    ({"a": [{"kind": "train", "epoch": 1.0, "loss": 0.5}]}, ValueError,
     r"logs\['a'\]\[0\] \(train\) needs numbers"),
    ({"a": [{"kind": "eval", "epoch": "1", "loss": 0.5, "accuracy": 0.5}]}, ValueError,
     r"logs\['a'\]\[0\] \(eval\)"),
])
def test_bad_inputs_are_rejected(tmp_path, logs, error, pattern):
  with pytest.raises(error, match=pattern):
    training_figure(tmp_path / "training.png", logs)
  assert not list(tmp_path.iterdir())
