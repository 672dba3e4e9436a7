"""Training and evaluation batches laid out over every device of every JAX process.

A batch of B rows (`config.batch_size` or `eval_batch_size`: any B >= the
number of processes P) is split over the processes in contiguous blocks
(`salijax.parallel.process_share`; each process reads and preprocesses only its
block, `data.batches(..., share=...)`), and each block is padded to R rows, R
the smallest multiple of the L local devices that holds the largest block, by
repeating its last row with `valid=False`. The global batch is f[P*R, ...]
split over the "data" axis of `data_mesh()` (devices in process order), so
each device computes R / L rows:

    B = 16 on 1 x 3 devices:  R = 18, rows 16 and 17 padding
    B = 15 on 2 x 2 devices:  blocks of 8 and 7 rows, R = 8, one padding row (process 1)

The steps weigh the rows by `valid` (masked means, masked BatchNorm
statistics: `salijax.train.steps`), so the result is that of the B rows alone,
whatever P and L, up to the order of float sums.
"""

from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from salijax import parallel

DATA_AXIS = "data"


def data_mesh() -> Mesh:
  """A 1-D mesh, axis "data", over every device of every process, in process order.

  Raises:
    ValueError: the processes have different numbers of local devices.
  """
  devices = sorted(jax.devices(), key=lambda d: (d.process_index, d.id))
  if len(devices) != jax.process_count() * jax.local_device_count():
    raise ValueError(f"data-parallel training needs as many devices in every process; got "
                     f"{len(devices)} devices over {jax.process_count()} processes, "
                     f"{jax.local_device_count()} of them local")
  return Mesh(np.array(devices), (DATA_AXIS,))


def check_batch_size(field: str, batch_size: int, *, processes: int | None = None) -> None:
  """Raises a ValueError naming `config.<field>` if `batch_size` rows cannot be shared out
  over `processes` (default `jax.process_count()`): each one needs a row of every batch."""
  count = jax.process_count() if processes is None else processes
  if batch_size < count:
    raise ValueError(f"config.{field}: expected at least one row per process, so >= "
                     f"{count} with {count} processes, got {batch_size}")


def rows_per_process(batch_size: int, mesh: Mesh) -> int:
  """R: the rows of a process's padded block (module doc)."""
  count = jax.process_count()
  local = mesh.devices.size // count
  block = -(-batch_size // count)
  return -(-block // local) * local


def share() -> tuple[int, int]:
  """(process index, process count): `data.batches`'s `share` of this process."""
  return jax.process_index(), jax.process_count()


def replicate(tree: Any, mesh: Mesh) -> Any:
  """`tree`'s arrays (the same in every process) whole on every device of `mesh`."""
  sharding = NamedSharding(mesh, P())

  def place(leaf: Any) -> jax.Array:
    value = np.asarray(leaf)
    return jax.make_array_from_callback(value.shape, sharding, lambda _: value)

  return jax.tree.map(place, jax.device_get(tree))


def global_batch(local: dict[str, np.ndarray], batch_size: int, mesh: Mesh) -> dict[str, Any]:
  """This process's block of a batch (`data.batches(..., share=share())`) -> the global batch.

  Args:
    local: "image" f32[b,H,W,3], "label" i32[b], "valid" bool[b] (other keys are
      dropped): this process's b rows of a batch of `batch_size`.
    batch_size: B.
    mesh: `data_mesh()`.

  Returns:
    {"image", "label", "valid"} as global jax.Arrays of P*R rows split over
    `mesh`; padding rows have valid False.
  """
  rows = rows_per_process(batch_size, mesh)
  sharding = NamedSharding(mesh, P(DATA_AXIS))
  arrays = {key: local[key] for key in ("image", "label", "valid")}
  size = len(arrays["valid"])
  padded = parallel.pad_batch(arrays, rows)
  padded["valid"] = padded["valid"] & (np.arange(rows) < size)
  total = rows * jax.process_count()
  return {key: jax.make_array_from_process_local_data(sharding, value,
                                                      (total, *value.shape[1:]))
          for key, value in padded.items()}
