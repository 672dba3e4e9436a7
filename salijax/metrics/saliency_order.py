"""Pixels ranked by decreasing saliency, with one tie rule.

rank[b, y, x] is the position of pixel (y, x) when the pixels of map b are
sorted by decreasing value; rank 0 is the most salient pixel. Ties: equal
values keep raster order, the lower flat index y * W + x first (a stable sort
of the negated map; 0.0 and -0.0 are equal). A constant map is therefore
ranked in raster order, which metrics that need a ranking refuse unless told
otherwise.
"""

import jax
import jax.numpy as jnp


def pixel_ranks(maps: jax.Array) -> jax.Array:
  """f32[B,H,W] -> i32[B,H,W], each pixel's rank by decreasing saliency (module doc)."""
  batch, height, width = maps.shape
  order = jnp.argsort(-maps.reshape(batch, height * width), axis=1, stable=True)
  positions = jnp.broadcast_to(jnp.arange(height * width, dtype=jnp.int32), order.shape)
  ranks = jax.vmap(lambda o, p: jnp.zeros_like(p).at[o].set(p))(order, positions)
  return ranks.reshape(batch, height, width)
