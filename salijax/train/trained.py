"""`load_trained(workdir)`: a trained model back from its workdir, for later stages.

Usage:

  module, variables, config = salijax.train.load_trained("workdir/train")
  clf = salijax.models.classifier(module, variables)

The module is built for inference (every BatchNorm follows `train`, so with
`train=False` all use their running statistics). With several JAX processes,
every process must call it (the restore is collective); each gets the
variables replicated over every device (`jax.device_get` reads them).
"""

import os
from typing import Any

import flax.linen as nn
import jax
import ml_collections

from salijax import models
from salijax.train import checkpointing, data_parallel, training_setup
from salijax.train import config as config_lib
from salijax.train import workdir as workdir_lib

WHICH = ("best", "latest")


def load_trained(workdir: str | os.PathLike, which: str = "best", *, step: int | None = None
                 ) -> tuple[nn.Module, dict[str, Any], ml_collections.ConfigDict]:
  """Loads the model trained in `workdir`.

  Args:
    workdir: the workdir of `train_and_evaluate`.
    which: "best" (highest eval accuracy) or "latest" (the last saved step).
    step: with which="latest", another kept step than the last (the workdir keeps
      the last 2 saved states).

  Returns:
    (module, variables {"params", "batch_stats"}, the run's config).

  Raises:
    ValueError: `which` is unknown, or the workdir holds no such checkpoint (or step).
  """
  if which not in WHICH:
    raise ValueError(f"which: expected one of {WHICH}, got {which!r}")
  record = workdir_lib.read_run_record(workdir)
  config = ml_collections.ConfigDict(
      {**record["config"], "crop_scale": tuple(record["config"]["crop_scale"])})
  module = models.create(config.model, num_classes=record["num_classes"],
                         head=config.head, **config_lib.vgg_options(config))
  if step is not None and which != "latest":
    raise ValueError(f"step: only with which='latest', got which={which!r}")
  checkpoints = checkpointing.Checkpoints(workdir, read_only=True)
  try:
    if step is None:
      step = checkpoints.best_step() if which == "best" else checkpoints.latest_step()
      if step is None:
        raise ValueError(f"which: workdir {workdir} holds no {which!r} checkpoint yet")
    elif step not in (kept := checkpoints.kept_steps()):
      raise ValueError(f"step: workdir {workdir} keeps steps {kept}, got {step!r}")
    # Several processes restore together (orbax), each a whole copy on every device.
    sharding = (jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
                if jax.process_count() == 1 else
                jax.sharding.NamedSharding(data_parallel.data_mesh(), jax.sharding.PartitionSpec()))
    if which == "best":
      abstract = jax.eval_shape(lambda: models.init(
          module, training_setup.init_key(config), config.image_size))
      abstract = {"params": abstract["params"],
                  "batch_stats": abstract.get("batch_stats", {})}
      variables = checkpoints.restore_best(
          checkpointing.abstract_with_sharding(abstract, sharding))
    else:
      steps_per_epoch = int(record["steps_per_epoch"])
      setup = training_setup.build_setup(config, num_classes=record["num_classes"],
                                         steps_per_epoch=steps_per_epoch)
      abstract = checkpointing.abstract_with_sharding(
          training_setup.abstract_state(setup, config), sharding)
      variables = checkpoints.restore_latest(abstract, step).variables
  finally:
    checkpoints.close()
  return module, variables, config
