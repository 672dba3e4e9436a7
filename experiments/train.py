r"""Trains a classifier; resumes when the workdir already holds the run.

  python -m experiments.train --config=experiments/configs/train.py --workdir=workdir/train \
    [--config.model=vgg11 --config.mode=finetune --config.pretrained=torchvision ...]

Writes checkpoints, metrics.jsonl, TensorBoard events and results.json to the
workdir (see salijax.train.loop). Data parallel over every local device; with
the flags of experiments/process_flags.py (--coordinator_address, --num_processes,
--process_id), over every device of several processes, each reading its block
of every batch, all writing one checkpoint to the shared workdir.
"""

from absl import app, flags
from ml_collections import config_flags

import salijax.train
from experiments import orbax_logging, process_flags
from salijax import cpu_convolutions

_CONFIG = config_flags.DEFINE_config_file("config", None, "Training config file.",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory of checkpoints and logs.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  cpu_convolutions.use_xla_convolutions()
  process_flags.join()
  orbax_logging.drop_orbax_info()
  salijax.train.train_and_evaluate(_CONFIG.value, _WORKDIR.value)


if __name__ == "__main__":
  app.run(main)
