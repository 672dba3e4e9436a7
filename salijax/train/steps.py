"""The train and eval step functions (`loop` and `throughput` jit them).

A train step draws its dropout key as `fold_in(dropout_key, state.step)`, so
step `s` computes the same update whether the run was resumed or not. Both
steps weigh the rows by a `valid` mask: the train step's loss is the mean over
the valid rows and its BatchNorm statistics are theirs
(`masked_batch_norm`), the eval step returns sums over them, so the rows that
pad a batch to the devices (`data_parallel`) or the last eval batch count for
nothing.
"""

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from salijax.train import loss as loss_lib
from salijax.train import masked_batch_norm
from salijax.train.train_state import TrainState

TrainStep = Callable[[TrainState, jax.Array, jax.Array, jax.Array], TrainState]
EvalStep = Callable[[Any, jax.Array, jax.Array, jax.Array], dict[str, jax.Array]]


def make_train_step(module: nn.Module, tx: optax.GradientTransformation, trainable: Any,
                    *, dropout_key: jax.Array, label_smoothing: float) -> TrainStep:
  """Returns `step(state, images f32[B,H,W,3], labels i32[B], valid bool[B]) -> state`
  (not jitted).

  The step applies one update for the valid rows (the same as for a batch of
  them alone, up to float rounding), then adds their summed loss, correct
  count and number to `state.window`. Leaves of `trainable` (a bool pytree like
  the params) that are False come out bit-identical: their zero update is not
  even added (`p + 0.0` would turn -0.0 into +0.0).
  """

  def step(state: TrainState, images: jax.Array, labels: jax.Array,
           valid: jax.Array) -> TrainState:
    key = jax.random.fold_in(dropout_key, state.step)
    weights = valid.astype(jnp.float32)

    def loss_fn(params):
      with masked_batch_norm.valid_rows_only(valid):
        logits, updated = module.apply(
            {"params": params, "batch_stats": state.batch_stats}, images, train=True,
            rngs={"dropout": key}, mutable=["batch_stats"])
      losses = jnp.where(valid, loss_lib.cross_entropy(logits, labels,
                                                       label_smoothing=label_smoothing), 0.0)
      return losses.sum() / weights.sum(), (losses, logits, updated.get("batch_stats", {}))

    grads, (losses, logits, batch_stats) = jax.grad(loss_fn, has_aux=True)(state.params)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    updated_params = optax.apply_updates(state.params, updates)
    params = jax.tree.map(lambda t, new, old: new if t else old,
                          trainable, updated_params, state.params)
    window = {
        "loss": state.window["loss"] + losses.sum(),
        "correct": state.window["correct"] + (loss_lib.correct(logits, labels) * weights).sum(),
        "count": state.window["count"] + weights.sum(),
    }
    return TrainState(step=state.step + 1, params=params, batch_stats=batch_stats,
                      opt_state=opt_state, window=window)

  return step


def make_eval_step(module: nn.Module) -> EvalStep:
  """Returns `eval(variables, images, labels, valid bool[B]) -> {"loss", "correct", "count"}`.

  The sums (f32[]) run over valid rows only; the loss is the plain
  cross-entropy (no label smoothing), so it is comparable across configs.
  """

  def step(variables, images, labels, valid):
    logits = module.apply(variables, images, train=False)
    weights = valid.astype(jnp.float32)
    return {
        "loss": (loss_lib.cross_entropy(logits, labels) * weights).sum(),
        "correct": (loss_lib.correct(logits, labels) * weights).sum(),
        "count": weights.sum(),
    }

  return step
