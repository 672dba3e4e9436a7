"""Reducing per-channel attributions f32[B,H,W,3] to maps f32[B,H,W].

The gradient methods (gradient, guided_backprop, guided_gradcam,
integrated_gradients, smoothgrad) attribute to every colour channel of every
pixel; their `reduce` option says how a pixel's three values become one:

  "max_abs": max_c |a_c|, Simonyan et al.'s saliency map (the default).
  "abs_sum": sum_c |a_c|, as PAIR-code/saliency visualises its masks.
  "sum":     sum_c a_c, signed; for integrated gradients it keeps completeness
             (the map sums to y_c(I) - y_c(baseline)).
  "none":    no reduction: the raw f32[B,H,W,3].

    check_reduce(reduce)                       # on the host, before jit
    maps = reduce_channels(grads, "max_abs")   # f32[B,H,W,3] -> f32[B,H,W]
"""

import jax
import jax.numpy as jnp

REDUCTIONS = ("max_abs", "abs_sum", "sum", "none")


def check_reduce(reduce: object) -> None:
  """ValueError naming `reduce` unless it is one of `REDUCTIONS`."""
  if not isinstance(reduce, str) or reduce not in REDUCTIONS:
    raise ValueError(f"reduce: expected one of {list(REDUCTIONS)}, got {reduce!r}")


def reduce_channels(attributions: jax.Array, reduce: str) -> jax.Array:
  """f32[B,H,W,3] -> f32[B,H,W] by `reduce` (module doc); "none" returns the input."""
  check_reduce(reduce)
  if reduce == "max_abs":
    return jnp.abs(attributions).max(axis=-1)
  if reduce == "abs_sum":
    return jnp.abs(attributions).sum(axis=-1)
  if reduce == "sum":
    return attributions.sum(axis=-1)
  return attributions
