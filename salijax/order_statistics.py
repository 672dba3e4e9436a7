"""Order statistics without a sort: the k-th smallest value and the k smallest values.

XLA's sort costs far more than a linear pass, on a CPU most of all (sorting
the 12544 pixels of a 112 x 112 map takes about as long as the image's
ResNet18 forward there). For non-negative floats the bits order the values as
the values do, so a bisection on the bits finds the k-th smallest value in
one counting pass per bit (31 for float32, 63 for float64):

    threshold = kth_smallest(values, k)       # == np.sort(values)[k]
    chosen = smallest(values, count)          # bool[n], the first `count` of a stable sort
"""

import jax
import jax.numpy as jnp


def _bits(values: jax.Array) -> jax.Array:
  """The values' bits as signed integers: ordered as non-negative values, subnormals too
  (which XLA:CPU's float comparisons may flush to 0)."""
  return jax.lax.bitcast_convert_type(values, {4: jnp.int32, 8: jnp.int64}[values.dtype.itemsize])


def _kth_smallest_bits(bits: jax.Array, index: int | jax.Array) -> jax.Array:
  """The bits of sorted(values)[index] (`_bits`): a bisection, one counting pass per bit."""
  def halve(_, bounds):
    low, high = bounds  # the answer's bits lie in [low, high]
    mid = low + (high - low) // 2
    enough = (bits <= mid).sum() >= index + 1
    return jnp.where(enough, low, mid + 1), jnp.where(enough, mid, high)

  passes = 8 * bits.dtype.itemsize - 1
  low, _ = jax.lax.fori_loop(0, passes, halve, (jnp.zeros((), bits.dtype), bits.max()))
  return low


def kth_smallest(values: jax.Array, index: int | jax.Array) -> jax.Array:
  """f[n] of values >= 0 (inf allowed), float32 or float64 -> f[], sorted(values)[index]."""
  return jax.lax.bitcast_convert_type(_kth_smallest_bits(_bits(values), index), values.dtype)


def smallest(values: jax.Array, count: int | jax.Array) -> jax.Array:
  """f[n] of values >= 0, 1 <= count <= n -> bool[n]: the `count` smallest values, ties
  taken in index order (the first `count` indices of a stable argsort), exactly `count`."""
  bits = _bits(values)
  threshold = _kth_smallest_bits(bits, count - 1)
  below = bits < threshold
  ties = bits == threshold
  return below | (ties & (jnp.cumsum(ties) <= count - below.sum()))
