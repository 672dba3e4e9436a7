"""Trains a tiny BatchNorm CNN a few SGD steps data-parallel, and on one device unpadded.

Run by data_parallel_test.py, in a subprocess (the device count is fixed when
JAX starts) or as each process of a job (all with the same --port and
--num_processes). The data-parallel run builds every batch as the training
loop does: each process takes its block of the batch's rows,
`data_parallel.global_batch` pads the blocks to fill the local devices and
lays them out over `data_parallel.data_mesh()`, and the masked train step
(`salijax.train.steps`) runs on the mesh. The reference run steps on the B
rows alone on one device with an all-true mask. Process 0 writes
OUT/result.npz: "mesh/<leaf>" and "reference/<leaf>" for the params,
batch_stats and metric window after STEPS steps, "rows" (the padded global
batch) and "devices".

    XLA_FLAGS=--xla_force_host_platform_device_count=3 python tests/train/data_parallel_job.py \
        --batch_size=16 --out=/tmp/job
"""

import argparse
import pathlib

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from salijax import parallel
from salijax.train import data_parallel, steps
from salijax.train import optimizer as optimizer_lib
from salijax.train import train_state as train_state_lib

SIZE = 8  # image side
STEPS = 3
LEARNING_RATE = 0.1
NUM_CLASSES = 3


class TinyBatchNormCNN(nn.Module):
  """conv 3x3 (4 channels) -> BatchNorm -> ReLU -> spatial mean -> dense (3 classes)."""

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    x = nn.Conv(4, (3, 3))(x)
    x = nn.BatchNorm(use_running_average=not train, momentum=0.9)(x)
    return nn.Dense(NUM_CLASSES)(nn.relu(x).mean(axis=(1, 2)))


def examples(count: int) -> tuple[np.ndarray, np.ndarray]:
  """f32[count,SIZE,SIZE,3] images and i32[count] labels."""
  rng = np.random.default_rng(0)
  return (rng.normal(size=(count, SIZE, SIZE, 3)).astype(np.float32),
          rng.integers(0, NUM_CLASSES, count).astype(np.int32))


def initial_state() -> tuple[TinyBatchNormCNN, train_state_lib.TrainState, steps.TrainStep]:
  """The module, its state at step 0 (SGD with momentum) and its (unjitted) train step."""
  module = TinyBatchNormCNN()
  variables = module.init(jax.random.key(0), jnp.zeros((1, SIZE, SIZE, 3)))
  params = variables["params"]
  trainable = jax.tree.map(lambda _: True, params)
  tx = optimizer_lib.make_optimizer("sgd", learning_rate=optax.constant_schedule(LEARNING_RATE),
                                    momentum=0.9, nesterov=False, weight_decay=0.0,
                                    trainable=trainable)
  state = train_state_lib.TrainState(step=jnp.zeros((), jnp.int32), params=params,
                                     batch_stats=variables["batch_stats"],
                                     opt_state=tx.init(params),
                                     window=train_state_lib.empty_window())
  step = steps.make_train_step(module, tx, trainable, dropout_key=jax.random.key(1),
                               label_smoothing=0.0)
  return module, state, step


def reference(batch_size: int) -> train_state_lib.TrainState:
  """STEPS steps on batches of `batch_size` rows, one device, no padding."""
  images, labels = examples(STEPS * batch_size)
  _, state, step = initial_state()
  step = jax.jit(step)
  for s in range(STEPS):
    rows = slice(s * batch_size, (s + 1) * batch_size)
    state = step(state, images[rows], labels[rows], np.ones(batch_size, bool))
  return state


def data_parallel_run(batch_size: int) -> tuple[train_state_lib.TrainState, int]:
  """The same steps over every device of every process; returns (state, padded rows)."""
  images, labels = examples(STEPS * batch_size)
  mesh = data_parallel.data_mesh()
  replicated, split = NamedSharding(mesh, P()), NamedSharding(mesh, P(data_parallel.DATA_AXIS))
  _, state, step = initial_state()
  state = data_parallel.replicate(state, mesh)
  step = jax.jit(step, in_shardings=(replicated, split, split, split), out_shardings=replicated)
  block = parallel.process_share(batch_size)
  for s in range(STEPS):
    mine = s * batch_size + block  # this process reads only its rows of the batch
    local = {"image": images[mine], "label": labels[mine], "valid": np.ones(len(mine), bool)}
    batch = data_parallel.global_batch(local, batch_size, mesh)
    state = step(state, batch["image"], batch["label"], batch["valid"])
  return state, int(batch["valid"].shape[0])


def leaves(prefix: str, state: train_state_lib.TrainState) -> dict[str, np.ndarray]:
  tree = {"params": state.params, "batch_stats": state.batch_stats, "window": state.window}
  flat = jax.tree_util.tree_flatten_with_path(jax.device_get(tree))[0]
  return {prefix + jax.tree_util.keystr(path): np.asarray(leaf) for path, leaf in flat}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch_size", type=int, required=True)
  parser.add_argument("--out", type=pathlib.Path, required=True)
  parser.add_argument("--port", type=int, default=0)
  parser.add_argument("--num_processes", type=int, default=1)
  parser.add_argument("--process_id", type=int, default=0)
  args = parser.parse_args()
  parallel.initialize(f"127.0.0.1:{args.port}", args.num_processes, args.process_id,
                      timeout_s=120)
  state, rows = data_parallel_run(args.batch_size)
  result = {**leaves("mesh", state), **leaves("reference", reference(args.batch_size)),
            "rows": rows, "devices": jax.device_count()}
  parallel.barrier("trained")
  if jax.process_index() == 0:
    args.out.mkdir(parents=True, exist_ok=True)
    np.savez(args.out / "result.npz", **result)


if __name__ == "__main__":
  main()
