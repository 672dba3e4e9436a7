"""Pixels ranked by decreasing saliency, with one tie rule; checks of maps.

rank[b, y, x] is the position of pixel (y, x) when the pixels of map b are
sorted by decreasing value; rank 0 is the most salient pixel. Ties: equal
values keep raster order, the lower flat index y * W + x first (a stable sort
of the negated map; 0.0 and -0.0 are equal). A constant map is therefore
ranked in raster order, which metrics that need a ranking refuse unless told
otherwise.
"""

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from salijax import validation


def pixel_ranks(maps: jax.Array) -> jax.Array:
  """f32[B,H,W] -> i32[B,H,W], each pixel's rank by decreasing saliency (module doc)."""
  batch, height, width = maps.shape
  order = jnp.argsort(-maps.reshape(batch, height * width), axis=1, stable=True)
  positions = jnp.broadcast_to(jnp.arange(height * width, dtype=jnp.int32), order.shape)
  ranks = jax.vmap(lambda o, p: jnp.zeros_like(p).at[o].set(p))(order, positions)
  return ranks.reshape(batch, height, width)


def check_maps(maps: Any, images: Any, *, allow_constant: bool = True,
               name: str = "maps") -> None:
  """Maps f32[B,H,W] matching images f32[B,H,W,3], finite; else ValueError/TypeError.

  Values are checked only when concrete (not under a caller's `jax.jit`).

  Args:
    maps: the saliency maps.
    images: the images they explain.
    allow_constant: whether a map with a single value everywhere is accepted
      (when False, a metric needs a ranking and a constant map has none).
    name: the argument's name in error messages.
  """
  shape = getattr(maps, "shape", None)
  dtype = getattr(maps, "dtype", None)
  if shape is None or dtype is None:
    raise TypeError(f"{name} must be an array f32[B,H,W], got {type(maps).__name__}")
  if tuple(shape) != tuple(images.shape[:3]):
    raise ValueError(f"{name} must have shape [B, H, W] = {tuple(images.shape[:3])} like the"
                     f" images {tuple(images.shape)}, got {tuple(shape)}")
  if not jnp.issubdtype(dtype, jnp.floating):
    raise TypeError(f"{name} must be floating point, got dtype {dtype}")
  if not validation.is_concrete(maps):
    return
  values = np.asarray(maps).reshape(shape[0], -1)
  finite = np.isfinite(values).all(axis=1)
  if not finite.all():
    raise ValueError(f"{name} must be finite, got non-finite values in maps"
                     f" {np.flatnonzero(~finite)[:5].tolist()}")
  constant = values.min(axis=1) == values.max(axis=1)
  if not allow_constant and constant.any():
    raise ValueError(
        f"{name} must rank the pixels, got constant maps (every pixel equal) at batch indices"
        f" {np.flatnonzero(constant)[:5].tolist()}; pass allow_constant_maps=True to rank"
        " them in raster order (the tie rule)")
