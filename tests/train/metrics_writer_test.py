"""Tests of the JSON-lines / TensorBoard writer and its truncation on resume."""

import json

from salijax.train import metrics_writer
from salijax.train import workdir as workdir_lib


def write_steps(workdir, steps, resume_step=0):
  writer = metrics_writer.MetricsWriter(workdir, resume_step=resume_step)
  for step in steps:
    writer.write_train(step=step, epoch=step / 4, loss=1.0 / step, accuracy=0.5,
                       learning_rate=0.1, images_per_sec=10.0)
    if step % 4 == 0:
      writer.write_eval(step=step, epoch=step / 4, split="test", loss=2.0, accuracy=0.25)
  writer.close()


def test_lines_have_the_documented_fields(tmp_path):
  write_steps(tmp_path, [1, 2, 3, 4])
  records = metrics_writer.read_metrics(tmp_path)
  assert [r["step"] for r in records] == [1, 2, 3, 4, 4]
  assert set(records[0]) == {"kind", "step", "epoch", "loss", "accuracy", "learning_rate",
                             "images_per_sec"}
  assert records[-1] == {"kind": "eval", "step": 4, "epoch": 1.0, "split": "test",
                         "loss": 2.0, "accuracy": 0.25}
  assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))


def test_resume_truncates_lines_after_the_restored_step(tmp_path):
  write_steps(tmp_path, range(1, 8))  # A run that got to step 7, then died.
  write_steps(tmp_path, range(5, 10), resume_step=4)  # Resumed from a checkpoint at 4.
  records = metrics_writer.read_metrics(tmp_path)
  train_steps = [r["step"] for r in records if r["kind"] == "train"]
  eval_steps = [r["step"] for r in records if r["kind"] == "eval"]
  assert train_steps == list(range(1, 10))
  assert eval_steps == [4, 8]


def test_a_partially_written_line_is_dropped(tmp_path):
  write_steps(tmp_path, [1, 2, 3])
  with open(workdir_lib.metrics_path(tmp_path), "a") as f:
    f.write('{"kind": "train", "step": 4, "lo')  # Killed while writing.
  write_steps(tmp_path, [4], resume_step=3)
  lines = workdir_lib.metrics_path(tmp_path).read_text().splitlines()
  assert [json.loads(line)["step"] for line in lines] == [1, 2, 3, 4, 4]
