"""End-to-end test of the experiments.train binary on a tiny config."""

import json
import pathlib
import subprocess
import sys

import jax
import pytest

pytestmark = pytest.mark.slow  # minutes: `make test-fast` leaves it out

REPO = pathlib.Path(__file__).resolve().parents[2]


def run_binary(*flags, tmp_path):
  return subprocess.run(
      [sys.executable, "-m", "experiments.train",
       "--config=experiments/configs/train.py", *flags],
      cwd=REPO, capture_output=True, text=True, timeout=900, check=False)


def test_binary_trains_and_writes_its_outputs(tmp_path):
  workdir = tmp_path / "run"
  result = run_binary(
      f"--workdir={workdir}", f"--config.data_dir={tmp_path / 'tfds'}",
      "--config.synthetic.image_size=32", "--config.synthetic.num_train=32",
      "--config.synthetic.num_test=8", "--config.image_size=32", "--config.batch_size=16",
      "--config.eval_batch_size=8", "--config.num_epochs=1", "--config.log_every_steps=1",
      "--config.progress_bar=False", tmp_path=tmp_path)
  assert result.returncode == 0, result.stderr[-3000:]
  results = json.loads((workdir / "results.json").read_text())
  assert results["steps"] == 2 and 0 <= results["accuracy"] <= 1
  lines = (workdir / "metrics.jsonl").read_text().splitlines()
  assert [json.loads(line)["step"] for line in lines] == [1, 2, 2]
  assert list((workdir / "tensorboard").glob("events.out.tfevents.*"))
  assert (workdir / "checkpoints" / "latest" / "2").is_dir()
  assert (workdir / "checkpoints" / "best" / "2").is_dir()
  assert f"jax {jax.__version__}, backend" in result.stderr  # The start-up log.
  assert "Renaming" not in result.stderr  # orbax's INFO chatter is filtered.


def test_binary_rejects_an_invalid_override(tmp_path):
  result = run_binary(f"--workdir={tmp_path}", "--config.lr_floor=1.5", tmp_path=tmp_path)
  assert result.returncode != 0
  assert "config.lr_floor: expected" in result.stderr
  assert not (tmp_path / "run.json").exists()
