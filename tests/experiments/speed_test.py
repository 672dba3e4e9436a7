"""End-to-end test of the experiments.speed benchmark binary."""

import json
import os
import pathlib
import subprocess
import sys

import jax
import pytest

from salijax import cpu_convolutions

pytestmark = pytest.mark.slow  # minutes: `make test-fast` leaves it out

REPO = pathlib.Path(__file__).resolve().parents[2]


def _run_speed(*flags: str, **environ: str) -> subprocess.CompletedProcess:
  """Runs the binary on CPU, sharing the tests' persistent compile cache."""
  env = dict(os.environ, JAX_PLATFORMS="cpu", JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0.5",
             **environ)
  if jax.config.jax_compilation_cache_dir:
    env["JAX_COMPILATION_CACHE_DIR"] = jax.config.jax_compilation_cache_dir
  return subprocess.run([sys.executable, "-m", "experiments.speed", *flags], cwd=REPO, env=env,
                        capture_output=True, text=True, timeout=900, check=False)


def test_train_benchmark_prints_and_writes_rows(tmp_path):
  output = tmp_path / "rows.json"
  result = _run_speed("--benchmark=train", "--models=resnet18", "--image_size=32",
                      "--batch_size=2", "--warmup=0", "--repeats=1", f"--output={output}")
  assert result.returncode == 0, result.stderr[-3000:]
  (row,) = json.loads(output.read_text())
  assert (row["benchmark"], row["model"], row["image_size"], row["batch_size"]) == (
      "train", "resnet18", 32, 2)
  assert row["train_images_per_sec"] > 0 and row["forward_images_per_sec"] > 0
  assert "model=resnet18 image_size=32" in result.stdout


def test_methods_benchmark_takes_methods_and_their_options(tmp_path):
  output = tmp_path / "rows.json"
  # --method_options wins over the --num_masks shortcut.
  result = _run_speed("--benchmark=methods", "--methods=fake_cam,rise", "--models=resnet18",
                      "--image_size=32", "--batch_size=1", "--num_masks=5",
                      "--method_options=rise.num_masks=2,rise.chunk=1", "--warmup=0",
                      "--repeats=1", f"--output={output}")
  assert result.returncode == 0, result.stderr[-3000:]
  control, rise = json.loads(output.read_text())
  assert (control["method"], control["ratio"]) == ("fake_cam", None)
  assert (rise["method"], rise["options"], rise["passes_per_image"], rise["pass_batch"]) == (
      "rise", "chunk=1,num_masks=2", 2, 1)
  assert rise["ratio"] > 0
  assert "method=rise" in result.stdout


def test_the_binary_runs_xla_convolutions_unless_xla_flags_choose(tmp_path):
  output = tmp_path / "rows.json"
  flags = ("--benchmark=cpu_convolutions", "--models=resnet18", "--image_size=32",
           "--batch_size=1", "--warmup=0", "--repeats=1", f"--output={output}")
  result = _run_speed(*flags, XLA_FLAGS="")
  assert result.returncode == 0, result.stderr[-3000:]
  assert [row["pass"] for row in json.loads(output.read_text())] == [
      "forward", "gradient", "scan_gradient", "parameter_gradient", "train_step"]
  assert f"XLA_FLAGS='{cpu_convolutions.XLA_CONVOLUTIONS_FLAG}'" in (
      result.stderr)
  chosen = "--xla_cpu_experimental_ynn_fusion_type=+individual_convolution"
  result = _run_speed(*flags[:-1], XLA_FLAGS=chosen)
  assert result.returncode == 0, result.stderr[-3000:]
  assert f"XLA_FLAGS='{chosen}'" in result.stderr
