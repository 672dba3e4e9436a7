"""The optax optimizer: SGD (momentum, optional Nesterov) or AdamW, with frozen parts.

Weight decay applies to kernels only (parameters with ndim > 1: convolution
and dense weights); BatchNorm scales/biases and all biases are not decayed.

- "sgd": `wd * param` is added to the gradient before momentum (PyTorch's
  coupled `weight_decay`), then `p <- p - lr * momentum_trace`.
- "adamw": decoupled decay, `p <- p - lr * (adam_update + wd * p)` (Loshchilov
  & Hutter; PyTorch's `AdamW`).

`lr_scales`, a float pytree like the params, multiplies each parameter's
update (weight decay included), as a per-layer learning rate does in PyTorch's
parameter groups.

Parameters whose `trainable` mask leaf is False get zero updates
(`optax.set_to_zero` in an `optax.multi_transform`) and keep no optimizer
state, so freezing a backbone also saves its momentum buffers.
"""

from typing import Any

import jax
import optax

OPTIMIZERS = ("sgd", "adamw")


def weight_decay_mask(params: Any) -> Any:
  """Bool pytree like `params`: True for kernels (ndim > 1), False for scales/biases."""
  return jax.tree.map(lambda p: p.ndim > 1, params)


def make_optimizer(name: str, *, learning_rate: optax.Schedule, momentum: float,
                   nesterov: bool, weight_decay: float,
                   trainable: Any, lr_scales: Any = None) -> optax.GradientTransformation:
  """Builds the optimizer of the module doc.

  Args:
    name: "sgd" or "adamw".
    learning_rate: a schedule `step -> lr` (see `schedule.warmup_cosine`).
    momentum: SGD momentum in [0, 1) (0 = plain SGD); ignored by AdamW, which
      uses optax's default betas (0.9, 0.999).
    nesterov: Nesterov momentum (SGD only).
    weight_decay: decay coefficient >= 0 (see the module doc for where it applies).
    trainable: bool pytree with the structure of the params; False = frozen.
    lr_scales: float pytree with the structure of the params: each parameter's
      learning-rate factor; None = 1 everywhere.
  """
  if name not in OPTIMIZERS:
    raise ValueError(f"optimizer: expected one of {OPTIMIZERS}, got {name!r}")
  if not 0 <= momentum < 1:
    raise ValueError(f"momentum: expected in [0, 1), got {momentum!r}")
  if weight_decay < 0:
    raise ValueError(f"weight_decay: expected >= 0, got {weight_decay!r}")
  if name == "sgd":
    inner = optax.chain(
        optax.add_decayed_weights(weight_decay, mask=weight_decay_mask),
        optax.sgd(learning_rate, momentum=momentum or None, nesterov=nesterov),
    )
  else:
    inner = optax.adamw(learning_rate, weight_decay=weight_decay,
                        mask=weight_decay_mask)
  if lr_scales is not None:
    inner = optax.chain(inner, optax.stateless(
        lambda updates, params: jax.tree.map(lambda u, s: u * s, updates, lr_scales)))
  labels = jax.tree.map(lambda t: "trainable" if t else "frozen", trainable)
  return optax.multi_transform(
      {"trainable": inner, "frozen": optax.set_to_zero()}, labels)
