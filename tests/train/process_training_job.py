"""One process of a training job: `train_and_evaluate` of a tiny config over all processes.

Run by process_training_test.py, once per process (all with the same --port,
--num_processes and --workdir; --num_processes=1 runs alone). With
--crash_after=N every process stops (raises) when asked for training batch
N + 1, as a killed job would, after the checkpoints of the steps before; the
same command without it resumes the run.

    XLA_FLAGS=--xla_force_host_platform_device_count=2 python tests/train/process_training_job.py \
        --port=12345 --num_processes=2 --process_id=0 --workdir=/tmp/run --data_dir=/tmp/tfds
"""

import argparse
import pathlib
import sys

import ml_collections

from experiments.configs import train as train_config
from salijax import data, parallel
from salijax.train import loop


class Crash(Exception):
  """Stands for a kill of the job."""


def tiny_config(data_dir: str) -> ml_collections.ConfigDict:
  """ResNet18 at 32 px, SGD, batch 15 (not a multiple of 4 devices): 2 epochs of 3 steps,
  a checkpoint every step, an eval batch of 100 holding the 20 test images."""
  config = train_config.get_config()
  config.synthetic = {"image_size": 32, "num_train": 48, "num_test": 20, "seed": 0,
                      "num_classes": 4}
  config.data_dir = data_dir
  config.image_size = 32
  config.batch_size = 15
  config.num_epochs = 2
  config.optimizer = "sgd"
  config.learning_rate = 0.01
  config.warmup_epochs = 0.5
  config.log_every_steps = 2
  config.checkpoint_every_steps = 1
  config.progress_bar = False
  return config


def crash_after(num_steps: int) -> None:
  """Makes the training batches raise `Crash` after `num_steps` of them."""
  real = data.batches
  served = 0

  def batches(*args, training, **kwargs):
    nonlocal served
    for batch in real(*args, training=training, **kwargs):
      if training:
        if served == num_steps:
          raise Crash
        served += 1
      yield batch

  data.batches = batches


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--port", type=int, default=0)
  parser.add_argument("--num_processes", type=int, default=1)
  parser.add_argument("--process_id", type=int, default=0)
  parser.add_argument("--workdir", type=pathlib.Path, required=True)
  parser.add_argument("--data_dir", required=True)
  parser.add_argument("--crash_after", type=int, default=0)
  args = parser.parse_args()
  parallel.initialize(f"127.0.0.1:{args.port}", args.num_processes, args.process_id,
                      timeout_s=120)
  if args.crash_after:
    crash_after(args.crash_after)
  try:
    loop.train_and_evaluate(tiny_config(args.data_dir), args.workdir)
  except Crash:
    print("crashed as asked", flush=True)
    return 3
  return 0


if __name__ == "__main__":
  sys.exit(main())
