"""End-to-end test of the experiments.speed benchmark binary."""

import json
import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[2]


def test_train_benchmark_prints_and_writes_rows(tmp_path):
  output = tmp_path / "rows.json"
  result = subprocess.run(
      [sys.executable, "-m", "experiments.speed", "--benchmark=train", "--models=resnet18",
       "--image_size=32", "--batch_size=2", "--warmup=0", "--repeats=1",
       f"--output={output}"],
      cwd=REPO, capture_output=True, text=True, timeout=900, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  (row,) = json.loads(output.read_text())
  assert (row["benchmark"], row["model"], row["image_size"], row["batch_size"]) == (
      "train", "resnet18", 32, 2)
  assert row["train_images_per_sec"] > 0 and row["forward_images_per_sec"] > 0
  assert "model=resnet18 image_size=32" in result.stdout
