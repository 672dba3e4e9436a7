"""Training of salijax classifiers: scratch, feature extraction or fine-tuning.

Usage:

  from experiments.configs import train as train_config
  config = train_config.get_config()
  results = salijax.train.train_and_evaluate(config, "workdir/train")
  module, variables, config = salijax.train.load_trained("workdir/train")

See `loop` for the run (resume, logs, checkpoints), `modes` for what trains,
`optimizer` and `schedule` for the update rule.
"""

from salijax.train.config import validate_config
from salijax.train.loop import train_and_evaluate
from salijax.train.modes import MODES
from salijax.train.optimizer import OPTIMIZERS
from salijax.train.trained import load_trained

__all__ = ["MODES", "OPTIMIZERS", "load_trained", "train_and_evaluate", "validate_config"]
