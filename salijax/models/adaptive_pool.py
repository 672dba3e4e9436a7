"""torch's `adaptive_avg_pool2d` on NHWC arrays.

Output cell i of an axis of length n pooled to m cells averages the inputs
[floor(i * n / m), ceil((i + 1) * n / m)), so cells overlap when m does not
divide n and inputs repeat when n < m. The windows are rectangles, so the 2-D
pool is the 1-D pool along H followed by the 1-D pool along W. Sums are plain
slices and means (no matmul), so the result does not depend on matmul precision.
"""

import jax
import jax.numpy as jnp
from jax import lax


def adaptive_bins(length: int, cells: int) -> tuple[tuple[int, int], ...]:
  """The [start, end) input range of each of `cells` output cells (torch's rule)."""
  return tuple((i * length // cells, -(-(i + 1) * length // cells)) for i in range(cells))


def _pool_axis(x: jax.Array, axis: int, cells: int) -> jax.Array:
  if x.shape[axis] == cells:
    return x
  return jnp.concatenate(
      [jnp.mean(lax.slice_in_dim(x, start, end, axis=axis), axis=axis, keepdims=True)
       for start, end in adaptive_bins(x.shape[axis], cells)], axis=axis)


def adaptive_avg_pool(x: jax.Array, output_size: tuple[int, int]) -> jax.Array:
  """f32[B,H,W,C] -> f32[B,output_size[0],output_size[1],C], as torch (module doc)."""
  return _pool_axis(_pool_axis(x, 1, output_size[0]), 2, output_size[1])
