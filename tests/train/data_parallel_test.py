"""Tests of the data-parallel layout (salijax.train.data_parallel) and the masked train step.

The padding rows must change nothing: a masked step on a batch with extra
rows (valid=False) gives the parameters, BatchNorm statistics and metric window
of a step on the real rows alone, to within the rounding of the longer sums.
data_parallel_job.py checks the same over 3 and 8 simulated devices and over
2 processes x 2 devices (each in a subprocess: the device count is fixed when
JAX starts), against its own unpadded one-device run.
"""

import os
import pathlib
import socket
import subprocess
import sys

import data_parallel_job as job
import float_tolerance
import jax
import numpy as np
import pytest

from salijax.train import data_parallel

REPO = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = pathlib.Path(__file__).with_name("data_parallel_job.py")
TIMEOUT_S = 300


def tree_leaves(state) -> dict[str, np.ndarray]:
  return job.leaves("", state)


def assert_close(got: dict[str, np.ndarray], expected: dict[str, np.ndarray], n: int,
                 initial: dict[str, np.ndarray]) -> None:
  """Every leaf within n * eps of the larger of its magnitude and the largest update.

  A step's sums (BatchNorm statistics, gradients over the batch, pixels and
  channels) have at most n terms; their rounding moves a result by n * eps
  of the terms' magnitudes, which the values and the updates bound (the
  conv bias, whose exact gradient is 0 under the BatchNorm, included).
  """
  update = max(np.abs(expected[k] - initial[k]).max() for k in initial if "params" in k)
  assert got.keys() == expected.keys()
  for key, value in expected.items():
    atol = float_tolerance.sum_rtol(n) * max(np.abs(value).max(), update)
    np.testing.assert_allclose(got[key], value, rtol=0, atol=atol, err_msg=key)


def test_masked_step_ignores_the_padding_rows():
  batch_size, extra = 6, 5
  images, labels = job.examples(job.STEPS * batch_size)
  junk_images, junk_labels = job.examples(job.STEPS * batch_size + extra)
  junk_images = junk_images[-extra:] * 10.0  # rows far from the real ones, other labels
  _, state, step = job.initial_state()
  initial = tree_leaves(state)
  step = jax.jit(step)
  rng = np.random.default_rng(1)
  for s in range(job.STEPS):
    rows = slice(s * batch_size, (s + 1) * batch_size)
    order = rng.permutation(batch_size + extra)  # padding rows anywhere in the batch
    valid = np.concatenate([np.ones(batch_size, bool), np.zeros(extra, bool)])[order]
    state = step(state, np.concatenate([images[rows], junk_images])[order],
                 np.concatenate([labels[rows], junk_labels[-extra:]])[order], valid)
  got = tree_leaves(state)
  expected = tree_leaves(job.reference(batch_size))
  assert got["['window']['count']"] == job.STEPS * batch_size
  n = (batch_size + extra) * job.SIZE ** 2 * job.STEPS
  assert_close(got, expected, n, initial)


def test_unmasked_padding_would_change_the_step():
  """The comparison above can fail: counting the padding rows moves the parameters."""
  batch_size = 6
  images, labels = job.examples(batch_size)
  _, state, step = job.initial_state()
  step = jax.jit(step)
  real = step(state, images, labels, np.ones(batch_size, bool))
  padded = step(state, np.concatenate([images, images[-1:].repeat(2, 0)]),
                np.concatenate([labels, labels[-1:].repeat(2)]), np.ones(batch_size + 2, bool))
  kernel = lambda s: np.asarray(s.params["Dense_0"]["kernel"])  # noqa: E731
  update = np.abs(kernel(real) - kernel(state)).max()
  assert np.abs(kernel(padded) - kernel(real)).max() > 1e-3 * update


def test_batch_sizes_below_the_process_count_are_refused():
  data_parallel.check_batch_size("batch_size", 3, processes=3)
  with pytest.raises(ValueError, match=r"config.eval_batch_size: expected at least one row "
                                       r"per process, so >= 4 with 4 processes, got 3"):
    data_parallel.check_batch_size("eval_batch_size", 3, processes=4)


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def run_job(out: pathlib.Path, batch_size: int, devices: int, processes: int = 1) -> dict:
  """data_parallel_job.py as `processes` processes of `devices` CPU devices; its result."""
  flags = " ".join([os.environ.get("XLA_FLAGS", ""),
                    f"--xla_force_host_platform_device_count={devices}"]).strip()
  env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=flags, PYTHONPATH=str(REPO))
  port = free_port()
  started = [subprocess.Popen(
      [sys.executable, str(SCRIPT), f"--batch_size={batch_size}", f"--out={out}",
       f"--port={port}", f"--num_processes={processes}", f"--process_id={i}"],
      env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
      for i in range(processes)]
  try:
    logs = [p.communicate(timeout=TIMEOUT_S)[0] for p in started]
  finally:
    for p in started:
      p.kill()
  assert [p.returncode for p in started] == [0] * processes, "\n".join(logs)[-5000:]
  with np.load(out / "result.npz") as stored:
    return {key: stored[key] for key in stored.files}


@pytest.mark.parametrize("batch_size,devices,processes,rows", [
    (16, 3, 1, 18),  # 16 rows padded to 18 on 3 devices
    pytest.param(15, 8, 1, 16, marks=pytest.mark.slow),
    pytest.param(15, 2, 2, 16, marks=pytest.mark.slow),  # blocks of 8 and 7, 2 devices each
])
def test_any_device_and_process_count_trains_as_one_device(tmp_path, batch_size, devices,
                                                           processes, rows):
  result = run_job(tmp_path, batch_size, devices, processes)
  assert int(result["devices"]) == devices * processes and int(result["rows"]) == rows
  got = {k[len("mesh"):]: v for k, v in result.items() if k.startswith("mesh")}
  expected = {k[len("reference"):]: v for k, v in result.items() if k.startswith("reference")}
  _, state, _ = job.initial_state()
  initial = tree_leaves(state)
  assert got["['window']['count']"] == job.STEPS * batch_size
  assert_close(got, expected, rows * job.SIZE ** 2 * job.STEPS, initial)
