"""Several JAX processes (jax.distributed), each explaining and scoring its share of the images.

Every process runs the same program: it joins the job, takes its share of
the items, computes it on its own devices (`run_sharded` over `local_mesh()`),
writes its part, waits for the others, and one process merges the parts.

    initialize("10.0.0.1:1234", num_processes=2, process_id=i)   # before any JAX call
    mine = process_share(len(dataset))                            # int64[m] item indices
    maps = run_sharded(methods.rise, clf, images[mine], labels[mine], key=key)
    ...                           # write (mine, maps) to this process's file, atomically
    barrier("parts written")
    if process_index() == 0:
      ...                         # read every process's file and merge them by index

On CPU the processes exchange data with gloo collectives
(`jax_cpu_collectives_implementation`); several processes on one machine
work the same way (coordinator "127.0.0.1:PORT"). With one process
everything here is a no-op and the same script runs unchanged.
"""

import jax
import numpy as np
from jax.experimental import multihost_utils


def _check_count(value: object, name: str, *, minimum: int) -> int:
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
    raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
  return int(value)


def _check_address(address: object) -> None:
  host, _, port = address.rpartition(":") if isinstance(address, str) else ("", "", "")
  if not host or not port.isdigit() or not 0 < int(port) < 65536:
    raise ValueError(f"coordinator_address must be 'host:port' (e.g. '127.0.0.1:1234'), got"
                     f" {address!r}")


def initialize(coordinator_address: str, num_processes: int, process_id: int, *,
               local_device_ids: int | list[int] | None = None, timeout_s: int = 300) -> None:
  """Joins this process to a job of `num_processes` JAX processes (no-op for one).

  Call it first, before anything that initialises JAX's backend (a
  computation, `jax.devices()`). Calling it again with the same arguments
  does nothing.

  Args:
    coordinator_address: "host:port" of process 0, which serves the job
      (not used, and not checked, for one process).
    num_processes: the number of processes, >= 1.
    process_id: this process's index in [0, num_processes).
    local_device_ids: the local devices this process uses (e.g. one GPU per
      process); None for all of them.
    timeout_s: how long to wait for every process to join, in seconds.

  Raises:
    ValueError: a malformed argument, or this process already joined as
      another process or to a job of another size.
    RuntimeError: JAX's backend was already initialised (from jax.distributed).
  """
  num_processes = _check_count(num_processes, "num_processes", minimum=1)
  process_id = _check_count(process_id, "process_id", minimum=0)
  if process_id >= num_processes:
    raise ValueError(f"process_id must be in [0, num_processes={num_processes}), got"
                     f" {process_id}")
  timeout_s = _check_count(timeout_s, "timeout_s", minimum=1)
  if jax.distributed.is_initialized():
    joined = (jax.process_index(), jax.process_count())
    if joined != (process_id, num_processes):
      raise ValueError(f"this process already joined as process {joined[0]} of {joined[1]},"
                       f" got process_id={process_id}, num_processes={num_processes}")
    return
  if num_processes == 1:
    return
  _check_address(coordinator_address)
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(coordinator_address=coordinator_address,
                             num_processes=num_processes, process_id=process_id,
                             local_device_ids=local_device_ids, initialization_timeout=timeout_s)


def process_index() -> int:
  """This process's index in [0, process_count()); 0 without jax.distributed."""
  return jax.process_index()


def process_count() -> int:
  """The number of processes of the job; 1 without jax.distributed."""
  return jax.process_count()


def process_share(num_items: int, *, index: int | None = None,
                  count: int | None = None) -> np.ndarray:
  """The indices of the items a process handles: a contiguous block, i64[m].

  Over the `count` processes the blocks are disjoint, in process order, and
  cover range(num_items); their sizes differ by at most one (the first
  num_items % count processes take one more).

  Args:
    num_items: the number of items, >= 0.
    index: the process, default this one (`process_index()`).
    count: the number of processes, default `process_count()`.

  Returns:
    int64[m] indices, ascending.

  Raises:
    ValueError: a negative num_items, count < 1, or index outside [0, count).
  """
  num_items = _check_count(num_items, "num_items", minimum=0)
  count = _check_count(process_count() if count is None else count, "count", minimum=1)
  index = _check_count(process_index() if index is None else index, "index", minimum=0)
  if index >= count:
    raise ValueError(f"index must be in [0, count={count}), got {index}")
  small, extra = divmod(num_items, count)
  start = index * small + min(index, extra)
  return np.arange(start, start + small + (index < extra), dtype=np.int64)


def barrier(name: str) -> None:
  """Waits until every process reaches the barrier called `name` (no-op for one process)."""
  if not isinstance(name, str) or not name:
    raise ValueError(f"name must be a non-empty string, got {name!r}")
  if process_count() > 1:
    multihost_utils.sync_global_devices(name)
