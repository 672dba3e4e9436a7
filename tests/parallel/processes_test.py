"""Tests of salijax.parallel.processes.

The job test runs tests/parallel/process_job.py as two JAX processes on this
machine (2 CPU devices each, gloo collectives) and as one process with one
device, at the same time, and compares the merged results; the other tests
run in the pytest process, which is a job of one process.
"""

import json
import os
import pathlib
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest

from salijax.parallel import barrier, initialize, process_count, process_index, process_share

SCRIPT = pathlib.Path(__file__).with_name("process_job.py")
NUM_ITEMS = 10  # process_job.NUM_ITEMS
TIMEOUT_S = 300  # a hung job fails the test instead of blocking the run


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def start_job(outdir: pathlib.Path, num_processes: int,
              devices_per_process: int) -> list[subprocess.Popen]:
  """Starts the processes of one job writing to `outdir`; their output goes to outdir/*.log."""
  outdir.mkdir()
  flags = " ".join([os.environ.get("XLA_FLAGS", ""),
                    f"--xla_force_host_platform_device_count={devices_per_process}"]).strip()
  env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=flags,
             JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0.5")
  if jax.config.jax_compilation_cache_dir:  # the tests' persistent compile cache
    env["JAX_COMPILATION_CACHE_DIR"] = jax.config.jax_compilation_cache_dir
  port = free_port()
  processes = []
  for i in range(num_processes):
    with open(outdir / f"process-{i}.log", "w") as log:
      processes.append(subprocess.Popen(
          [sys.executable, str(SCRIPT), f"--port={port}", f"--num_processes={num_processes}",
           f"--process_id={i}", f"--outdir={outdir}"],
          env=env, stdout=log, stderr=subprocess.STDOUT))
  return processes


def wait_for(processes: list[subprocess.Popen], outdir: pathlib.Path) -> None:
  """Waits for every process (killing all of them after TIMEOUT_S); asserts they succeeded."""
  try:
    codes = [p.wait(timeout=TIMEOUT_S) for p in processes]
  finally:
    for p in processes:
      if p.poll() is None:
        p.kill()
        p.wait()
  logs = "\n".join(f"--- {log.name}\n{log.read_text()[-3000:]}"
                   for log in sorted(outdir.glob("process-*.log")))
  assert codes == [0] * len(processes), logs


def test_two_processes_merge_to_the_single_process_result(tmp_path):
  jobs = {"two": (2, 2), "one": (1, 1)}  # name: (processes, devices per process)
  started = {name: start_job(tmp_path / name, *job) for name, job in jobs.items()}
  for name, processes in started.items():
    wait_for(processes, tmp_path / name)

  report = json.loads((tmp_path / "two" / "report.json").read_text())
  assert report["process_count"] == 2
  assert report["local_device_count"] == [2, 2]  # run_sharded over 2 local devices each
  assert report["device_count"] == [4, 4]
  items = report["items"]
  assert sorted(items[0] + items[1]) == list(range(NUM_ITEMS))  # each item exactly once
  assert [len(share) for share in items] == [5, 5]
  merged = np.load(tmp_path / "two" / "merged.npz")
  single = np.load(tmp_path / "one" / "merged.npz")
  assert json.loads((tmp_path / "one" / "report.json").read_text())["items"] == [
      list(range(NUM_ITEMS))]
  for field in ("maps", "insertion_auc", "deletion_auc"):
    assert merged[field].shape[0] == NUM_ITEMS
    np.testing.assert_allclose(merged[field], single[field], rtol=1e-5, atol=1e-6)
  assert np.ptp(single["maps"], axis=(1, 2)).min() > 0  # real maps, not constants


@pytest.mark.parametrize("count", [1, 2, 3, 4])
@pytest.mark.parametrize("num_items", [0, 1, 3, 10, 11])
def test_process_shares_are_disjoint_balanced_contiguous_and_cover_the_items(count, num_items):
  shares = [process_share(num_items, index=i, count=count) for i in range(count)]
  joined = np.concatenate(shares)
  np.testing.assert_array_equal(joined, np.arange(num_items))  # in order, each item once
  sizes = [len(share) for share in shares]
  assert max(sizes) - min(sizes) <= 1
  assert all(share.dtype == np.int64 for share in shares)


def test_one_process_job():
  initialize("127.0.0.1:1234", 1, 0)  # a no-op
  initialize("", 1, 0)  # one process needs no coordinator
  assert not jax.distributed.is_initialized()
  assert (process_index(), process_count()) == (0, 1)
  np.testing.assert_array_equal(process_share(7), np.arange(7))
  barrier("alone")  # returns at once


@pytest.mark.parametrize("args,pattern", [
    (("127.0.0.1:1234", 0, 0), r"num_processes must be an integer >= 1, got 0"),
    (("127.0.0.1:1234", True, 0), r"num_processes must be an integer >= 1, got True"),
    (("127.0.0.1:1234", 2, 2), r"process_id must be in \[0, num_processes=2\), got 2"),
    (("127.0.0.1:1234", 2, -1), r"process_id must be an integer >= 0, got -1"),
    (("127.0.0.1", 2, 0), r"coordinator_address must be 'host:port'.*'127.0.0.1'"),
    (("127.0.0.1:http", 2, 0), r"coordinator_address must be 'host:port'"),
    ((":1234", 2, 0), r"coordinator_address must be 'host:port'"),
    ((("127.0.0.1", 1234), 2, 0), r"coordinator_address must be 'host:port'"),
])
def test_initialize_rejects_bad_arguments(args, pattern):
  with pytest.raises(ValueError, match=pattern):
    initialize(*args)


@pytest.mark.parametrize("kwargs,pattern", [
    (dict(num_items=-1), r"num_items must be an integer >= 0, got -1"),
    (dict(num_items=3, count=0), r"count must be an integer >= 1, got 0"),
    (dict(num_items=3, index=2, count=2), r"index must be in \[0, count=2\), got 2"),
    (dict(num_items=3.0), r"num_items must be an integer"),
])
def test_process_share_rejects_bad_arguments(kwargs, pattern):
  with pytest.raises(ValueError, match=pattern):
    process_share(**kwargs)


def test_barrier_needs_a_name():
  with pytest.raises(ValueError, match="name must be a non-empty string"):
    barrier("")
