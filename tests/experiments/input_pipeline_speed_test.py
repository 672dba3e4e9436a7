"""End-to-end test of the experiments.input_pipeline_speed binary, on a few small JPEGs."""

import json
import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[2]


def test_the_binary_prints_and_writes_every_step(tmp_path):
  output = tmp_path / "rows.json"
  result = subprocess.run(
      [sys.executable, "-m", "experiments.input_pipeline_speed", "--num_images=6",
       "--height=60", "--width=80", "--image_size=32", "--threads=1,3", "--repeats=1",
       f"--json={output}"], cwd=REPO, capture_output=True, text=True, timeout=600, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  report = json.loads(output.read_text())
  assert report["jpeg"] == "80x60 q90" and report["image_size"] == 32
  assert [(row["step"], row["threads"]) for row in report["rows"]] == [
      ("read+decode", 1), ("+resize+crop", 1), ("+normalise", 1),
      ("+resize+crop (pool)", 1), ("+resize+crop (pool)", 3)]
  assert all(row["images_per_s"] > 0 and row["images_per_cpu_s"] > 0 for row in report["rows"])
  assert f"cpu={report['cpu']}" in result.stdout and "images/CPU-s" in result.stdout
