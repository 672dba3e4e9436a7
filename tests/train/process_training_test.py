"""Training over several JAX processes (process_training_job.py, subprocesses on this machine).

Two processes with two simulated CPU devices each train as one process with
four devices (after one step, to within the rounding of the differently
split sums), and a two-process run killed after a checkpoint and resumed ends
bit-identical to the uninterrupted one.
"""

import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys

import float_tolerance
import jax
import numpy as np
import pytest

from salijax.train import metrics_writer, trained

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("process_training")]

REPO = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = pathlib.Path(__file__).with_name("process_training_job.py")
TIMEOUT_S = 600


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def start(workdir: pathlib.Path, data_dir: pathlib.Path, processes: int, devices: int,
          *flags: str) -> list[subprocess.Popen]:
  flag = f"--xla_force_host_platform_device_count={devices}"
  env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(REPO),
             XLA_FLAGS=" ".join([os.environ.get("XLA_FLAGS", ""), flag]).strip())
  port = free_port()
  return [subprocess.Popen(
      [sys.executable, str(SCRIPT), f"--port={port}", f"--num_processes={processes}",
       f"--process_id={i}", f"--workdir={workdir}", f"--data_dir={data_dir}", *flags],
      env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
      for i in range(processes)]


def finish(started: list[subprocess.Popen], code: int = 0) -> None:
  try:
    logs = [p.communicate(timeout=TIMEOUT_S)[0] for p in started]
  finally:
    for p in started:
      p.kill()
  assert [p.returncode for p in started] == [code] * len(started), "\n".join(logs)[-6000:]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  """Workdirs: "one" (1 process x 4 devices, stopped after step 2 of 6), "two" (2 x 2, all 6
  steps), "two_steps" (2 x 2, stopped after step 2: a copy of "resumed" before it resumed),
  "resumed" (2 x 2, stopped after step 2, then resumed) and "prepare" (1 x 1, stopped after
  step 1); one TFDS dir, prepared first."""
  base = tmp_path_factory.mktemp("process_training")
  data_dir = base / "tfds"
  finish(start(base / "prepare", data_dir, 1, 1, "--crash_after=1"), code=3)
  jobs = {"one": start(base / "one", data_dir, 1, 4, "--crash_after=2"),
          "two": start(base / "two", data_dir, 2, 2),
          "resumed": start(base / "resumed", data_dir, 2, 2, "--crash_after=2")}
  finish(jobs["one"], code=3)
  finish(jobs["two"])
  finish(jobs["resumed"], code=3)
  shutil.copytree(base / "resumed", base / "two_steps")
  finish(start(base / "resumed", data_dir, 2, 2))
  return {name: base / name for name in ("one", "two", "two_steps", "resumed", "prepare")}


def latest(workdir: pathlib.Path, step: int | None = None) -> dict:
  _, variables, _ = trained.load_trained(workdir, which="latest", step=step)
  return jax.tree.map(np.asarray, variables)


def test_two_processes_train_as_one_process_with_as_many_devices(runs):
  """After one step: a second step amplifies the rounding differences of the split sums
  through BatchNorm's batch statistics (to about 1 % of a step's update on an AMD EPYC)."""
  one, two = latest(runs["one"], step=1), latest(runs["two_steps"], step=1)
  # The longest sums of a step: a BatchNorm's over 16 x 16 x 16 values of the first block.
  # The biases start at 0: their largest value is the scale of the step's update.
  n = 16 * 16 * 16 * 2
  for path, a, b in zip(jax.tree_util.tree_flatten_with_path(one)[0], jax.tree.leaves(one),
                        jax.tree.leaves(two), strict=True):
    atol = float_tolerance.sum_rtol(n) * np.abs(a).max()
    np.testing.assert_allclose(b, a, rtol=0, atol=atol, err_msg=jax.tree_util.keystr(path[0]))
  # Process 0 alone wrote the logs: each step once.
  logged = [metrics_writer.read_metrics(runs[name]) for name in ("one", "two_steps")]
  assert [(r["kind"], r["step"]) for r in logged[0]] == [("train", 2)]
  assert [(r["kind"], r["step"]) for r in logged[1]] == [("train", 2)]
  assert logged[1][0]["loss"] == pytest.approx(logged[0][0]["loss"], rel=1e-4)
  steps = [(r["kind"], r["step"]) for r in metrics_writer.read_metrics(runs["two"])]
  assert steps == [("train", 2), ("train", 3), ("eval", 3), ("train", 4), ("train", 6),
                   ("eval", 6)]


def test_a_killed_and_resumed_multi_process_run_equals_the_uninterrupted_one(runs):
  resumed, uninterrupted = latest(runs["resumed"]), latest(runs["two"])
  for a, b in zip(jax.tree.leaves(resumed), jax.tree.leaves(uninterrupted), strict=True):
    np.testing.assert_array_equal(a, b)
  results = [json.loads((runs[name] / "results.json").read_text())
             for name in ("resumed", "two")]
  assert results[0]["resumed_from_step"] == 2 and results[1]["resumed_from_step"] == 0
  assert {k: v for k, v in results[0].items() if k not in ("resumed_from_step", "wall_time_sec")
          } == {k: v for k, v in results[1].items()
                if k not in ("resumed_from_step", "wall_time_sec")}
  logged = [[{k: v for k, v in r.items() if k != "images_per_sec"}
             for r in metrics_writer.read_metrics(runs[name])] for name in ("resumed", "two")]
  assert logged[0] == logged[1]
