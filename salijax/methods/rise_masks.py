"""RISE's random masks (Petsiuk et al., BMVC 2018), one per key, on the device.

For an H x W image and an s x s grid (s = `cell`): each grid cell is 1 with
probability exactly p (`jax.random.bernoulli`), the grid is upsampled
bilinearly (`upsample_bilinear`: half-pixel centres, edge values beyond the
border) to ((s + 1) C_H, (s + 1) C_W) with C_H = ceil(H / s),
C_W = ceil(W / s), and the mask is the H x W crop at a uniform random integer
offset (dy, dx) in [0, C_H) x [0, C_W). Masks are real-valued, in [0, 1].
"""

import math

import jax
import jax.numpy as jnp

from salijax.methods.upsampling import upsample_bilinear


def cell_size(height: int, width: int, cell: int) -> tuple[int, int]:
  """(C_H, C_W) = (ceil(H / s), ceil(W / s)), the size of one grid cell in pixels."""
  return math.ceil(height / cell), math.ceil(width / cell)


def draw_grid(key: jax.Array, height: int, width: int, cell: int,
              p: float) -> tuple[jax.Array, jax.Array]:
  """The random part of one mask: (grid f32[s,s] in {0, 1}, offset i32[2] = (dy, dx))."""
  grid_key, offset_key = jax.random.split(key)
  grid = jax.random.bernoulli(grid_key, p, (cell, cell)).astype(jnp.float32)
  offset = jax.random.randint(offset_key, (2,), 0, jnp.array(cell_size(height, width, cell)))
  return grid, offset


def grid_mask(grid: jax.Array, offset: jax.Array, height: int, width: int) -> jax.Array:
  """f32[s,s] grid, i32[2] offset -> the mask f32[height, width] (see the module doc)."""
  cell = grid.shape[0]
  cell_h, cell_w = cell_size(height, width, cell)
  smooth = upsample_bilinear(grid, (cell + 1) * cell_h, (cell + 1) * cell_w)
  return jax.lax.dynamic_slice(smooth, (offset[0], offset[1]), (height, width))


def rise_mask(key: jax.Array, height: int, width: int, cell: int, p: float) -> jax.Array:
  """One mask f32[height, width] from `key`; vmap over keys for many."""
  grid, offset = draw_grid(key, height, width, cell, p)
  return grid_mask(grid, offset, height, width)
