"""Tests of the one-shot device suite: the bf16 cast, the filling batch, the tiny run's JSON."""

import json
import os
import pathlib
import subprocess
import sys

import jax
import pytest

from experiments import device_suite, method_speed
from experiments.filling_batch import filling_batch
from salijax import methods

REPO = pathlib.Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name, given, fill, expected", [
    ("rise", {}, 256, 1),  # 256 masks a forward already
    ("lime", {}, 256, 2),  # 128 samples a forward
    ("gradcam", {}, 256, 256),  # one gradient per image
    ("rise", {"chunk": 2}, 2, 1),
    ("gradcam", {}, 2, 2),
    ("fake_cam", {}, 8, 8),  # no pass
    ("insertion_deletion", {}, 256, 1),  # 256 steps a forward
])
def test_filling_batch(name, given, fill, expected):
  assert filling_batch(name, given, height=224, width=224, channels=512, fill=fill) == expected


def test_method_groups_hold_every_method_once_protocol_first():
  size = device_suite.SIZES["tiny"]
  groups = device_suite._method_groups(size, size.method_options)
  names = [name for _, group in groups for name in group]
  assert sorted(names) == sorted(method_speed.benchmarked_methods())
  assert names[:5] == ["gradcam", "rise", "sidu", "lime", "insertion_deletion"]
  for batch, group in groups:
    for name in group:
      assert batch == filling_batch(name, size.method_options.get(name, {}), height=32,
                                    width=32, channels=512, fill=size.fill)


def test_full_size_covers_the_issue():
  full = device_suite.SIZES["full"]
  assert full.image_size == 224 and full.memory_counts == (1000, 8000)
  assert set(full.forward_models) == {"resnet18", "vgg11", "efficientnet_b0", "vit_b_16"}
  for name, given in full.method_options.items():  # options every method takes
    method_speed.resolve_options(name, given)


@pytest.mark.slow  # every method compiled on ResNet18: minutes on 2 shared cores
def test_tiny_suite_writes_every_row(tmp_path):
  output = tmp_path / "suite.json"
  env = dict(os.environ, JAX_PLATFORMS="cpu", JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0.5")
  if jax.config.jax_compilation_cache_dir:
    env["JAX_COMPILATION_CACHE_DIR"] = jax.config.jax_compilation_cache_dir
  result = subprocess.run(
      [sys.executable, "-m", "experiments.speed", "--benchmark=suite", "--suite_size=tiny",
       f"--json={output}"], cwd=REPO, env=env, capture_output=True, text=True, timeout=1800,
      check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  report = json.loads(output.read_text())
  assert report["device_kind"] and report["device_count"] >= 1 and report["date"]
  assert report["jax"] == jax.__version__ and report["jaxlib"]
  assert report["suite"]["image_size"] == 32 and "not run" in report["peers"]
  rows = report["rows"]
  forward = {(r["model"], r["dtype"]) for r in rows if r["benchmark"] == "forward"}
  assert forward == {("resnet18", "float32"), ("resnet18", "bfloat16")}
  assert all(r["images_per_sec"] > 0 for r in rows if r["benchmark"] == "forward")
  memory = [r for r in rows if r["benchmark"] == "memory"]
  assert {(r["method"], r["count"]) for r in memory} == {
      (m, n) for m in ("lime", "rise") for n in (4, 8)}
  assert all(r["peak_mib"] > 0 and r["peak_source"] in ("memory_stats", "memory_analysis")
             for r in memory)
  timed = {r["method"]: r for r in rows if r["benchmark"] == "methods"}
  assert set(timed) == set(methods.names()) | {"insertion_deletion"}
  assert all(r["maps_per_sec"] > 0 for r in timed.values())
  assert all(r["ratio"] > 0 for r in timed.values() if r["pass_kind"] is not None)
  assert "| methods | rise |" in result.stdout  # the table
