"""Gaussian smoothing with scipy's `gaussian_filter` conventions (sigma, truncate).

The kernel has radius r = int(truncate * sigma + 0.5), i.e. 2r + 1 taps, and
mirrored borders including the edge pixel (scipy's 'reflect'); it is
`salijax.gaussian_blur` with that size. Channels are smoothed independently;
sigma = 0 returns the input.
"""

import jax
import jax.numpy as jnp

from salijax.gaussian_blur import gaussian_blur


def gaussian_smooth(images: jax.Array, sigma: float, truncate: float = 4.0) -> jax.Array:
  """f32[..., H, W, C] -> f32[..., H, W, C], Gaussian of std `sigma` pixels on H and W."""
  images = jnp.asarray(images, jnp.float32)
  if sigma == 0:
    return images
  return gaussian_blur(images, 2 * int(truncate * sigma + 0.5) + 1, sigma)
