"""Separable Gaussian smoothing over the two spatial axes, as scipy's `gaussian_filter`.

Taps w_t = exp(-t^2 / (2 sigma^2)) for integer t with |t| <= r, normalised to sum
1, with r = int(truncate * sigma + 0.5); borders are mirrored including the edge
pixel (scipy's 'reflect', numpy's 'symmetric': d c b a | a b c d | d c b a).
Channels are smoothed independently; sigma = 0 returns the input.
"""

import jax
import jax.numpy as jnp
import numpy as np


def gaussian_taps(sigma: float, truncate: float = 4.0) -> np.ndarray:
  """f64[2r+1], the normalised taps for offsets -r..r (see the module doc)."""
  radius = int(truncate * sigma + 0.5)
  offsets = np.arange(-radius, radius + 1, dtype=np.float64)
  taps = np.exp(-0.5 * (offsets / sigma) ** 2)
  return taps / taps.sum()


def _smooth_axis(x: jax.Array, taps: np.ndarray, axis: int) -> jax.Array:
  """Correlates `x` with `taps` along `axis` (mirrored borders); same shape."""
  radius = len(taps) // 2
  size = x.shape[axis]
  pad = [(0, 0)] * x.ndim
  pad[axis] = (radius, radius)
  padded = jnp.pad(x, pad, mode="symmetric")
  out = jnp.zeros_like(x)
  for t, weight in enumerate(taps):
    out = out + float(weight) * jax.lax.slice_in_dim(padded, t, t + size, axis=axis)
  return out


def gaussian_smooth(images: jax.Array, sigma: float, truncate: float = 4.0) -> jax.Array:
  """f32[..., H, W, C] -> f32[..., H, W, C], Gaussian of std `sigma` pixels on H and W."""
  images = jnp.asarray(images, jnp.float32)
  if sigma == 0:
    return images
  taps = gaussian_taps(sigma, truncate)
  return _smooth_axis(_smooth_axis(images, taps, images.ndim - 3), taps, images.ndim - 2)
