"""The training state: everything a resumed run needs, as one pytree of arrays.

The optimizer itself (`optax.GradientTransformation`) is not part of the
state; it is rebuilt from the config. Random keys are not stored either: the
dropout key of step `s` is derived from the seed and `s`.
"""

from typing import Any

import jax
import jax.numpy as jnp
from flax import serialization, struct


@struct.dataclass
class TrainState:
  """Training state after `step` updates.

  Attributes:
    step: i32[], the number of updates applied so far.
    params: the model's "params" collection.
    batch_stats: the model's "batch_stats" collection ({} without BatchNorm).
    opt_state: the optimizer state.
    window: {"loss", "correct", "count"} f32[] sums over the training steps
      since the last logged step, so a logged mean covers the same steps
      whether or not the run was interrupted inside the window.
  """

  step: jax.Array
  params: Any
  batch_stats: Any
  opt_state: Any
  window: dict[str, jax.Array]

  @property
  def variables(self) -> dict[str, Any]:
    """The model variables {"params", "batch_stats"} for `module.apply`."""
    return {"params": self.params, "batch_stats": self.batch_stats}


def empty_window() -> dict[str, jax.Array]:
  """Zero sums for `TrainState.window`."""
  return {name: jnp.zeros((), jnp.float32) for name in ("loss", "correct", "count")}


def to_checkpoint(state: TrainState) -> dict[str, Any]:
  """The state as nested dicts of arrays (what orbax's StandardSave stores)."""
  return serialization.to_state_dict(state)


def from_checkpoint(template: TrainState, tree: dict[str, Any]) -> TrainState:
  """Inverse of `to_checkpoint`; `template` gives the structure (arrays or abstract)."""
  return serialization.from_state_dict(template, tree)
