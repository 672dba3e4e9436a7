"""The flags that join a binary's process to a multi-process JAX job, and `join()`.

  --coordinator_address=HOST:PORT --num_processes=N --process_id=I   explicit
  --coordinator_address=auto                                          detected

"auto" lets `jax.distributed.initialize()` read the job from the cluster's
environment (every worker of a Cloud TPU slice, a SLURM job step, an Open MPI
launch); the explicit form works anywhere, e.g. several processes on one
machine (coordinator 127.0.0.1:PORT) or GPU nodes that know process 0's
address. Without these flags the binary runs as one process.
"""

import jax
from absl import app, flags

from salijax import parallel

AUTO = "auto"
_COORDINATOR = flags.DEFINE_string(
    "coordinator_address", "",
    "host:port of process 0 for a multi-process run, or 'auto' (TPU slice, SLURM, Open MPI).")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", 1, "Number of JAX processes.")
_PROCESS_ID = flags.DEFINE_integer("process_id", 0, "This process's index.")


def join() -> None:
  """Joins the job the flags describe (before any JAX computation); nothing for one process."""
  if _COORDINATOR.value == AUTO:
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize()
    return
  if _NUM_PROCESSES.value > 1:
    if not _COORDINATOR.value:
      raise app.UsageError("--coordinator_address is needed with --num_processes > 1")
    parallel.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
