"""Operations shared by the methods' maps: bilinear upsampling and colour-channel reduction.

`upsample_bilinear` uses half-pixel centres (as `jax.image.resize`, skimage
`resize(order=1)`, OpenCV `INTER_LINEAR` and torch
`interpolate(align_corners=False)`): output pixel y of H samples the input at
y_in = (y + 0.5) h / H - 0.5, linearly between the two nearest input pixels,
with the edge value outside [0, h - 1]; the same along the width.

The gradient methods attribute to each colour channel; their `reduce` option
says how a pixel's three values a_c become one (`REDUCTIONS`):
  "max_abs": max_c |a_c|, Simonyan et al.'s saliency map (the default);
  "abs_sum": sum_c |a_c|, as PAIR's `saliency` visualises its masks;
  "sum":     sum_c a_c, signed (integrated gradients keeps completeness);
  "none":    the raw f32[B,H,W,3].
"""

import jax
import jax.numpy as jnp

from salijax.methods.registry import Option, one_of

REDUCTIONS = ("max_abs", "abs_sum", "sum", "none")
REDUCE_OPTION = Option("max_abs", one_of(*REDUCTIONS))


def upsample_bilinear(maps: jax.Array, height: int, width: int) -> jax.Array:
  """f32[..., h, w] -> f32[..., height, width] (module doc); for height >= h, width >= w
  (shrinking is antialiased, `jax.image.resize`'s default, which no method relies on)."""
  maps = jnp.asarray(maps, jnp.float32)
  return jax.image.resize(maps, maps.shape[:-2] + (height, width), method="bilinear")


def reduce_channels(attributions: jax.Array, reduce: str) -> jax.Array:
  """f32[B,H,W,3] -> f32[B,H,W] by `reduce` (module doc); "none" returns the input."""
  if reduce == "max_abs":
    return jnp.abs(attributions).max(axis=-1)
  if reduce == "abs_sum":
    return jnp.abs(attributions).sum(axis=-1)
  if reduce == "sum":
    return attributions.sum(axis=-1)
  if reduce == "none":
    return attributions
  raise ValueError(f"reduce: expected one of {list(REDUCTIONS)}, got {reduce!r}")
