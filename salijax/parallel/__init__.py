"""Parallel runs: the batch split over local devices, the images split over JAX processes.

  from salijax import parallel
  maps = parallel.run_sharded(methods.gradcam, clf, images, labels)   # every local device
  parallel.initialize("127.0.0.1:1234", num_processes=2, process_id=i)
  mine = parallel.process_share(num_images)                           # this process's images
  parallel.barrier("parts written")
"""

from salijax.parallel.batch_sharding import (
    BATCH_AXIS,
    local_mesh,
    pad_batch,
    padded_size,
    replicate,
    run_sharded,
    shard_batch,
)
from salijax.parallel.processes import (
    barrier,
    initialize,
    process_count,
    process_index,
    process_share,
)

__all__ = ["BATCH_AXIS", "barrier", "initialize", "local_mesh", "pad_batch", "padded_size",
           "process_count", "process_index", "process_share", "replicate", "run_sharded",
           "shard_batch"]
