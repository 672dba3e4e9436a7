"""Separable Gaussian blur of images over their two spatial axes.

`size` x `size` taps w_t proportional to exp(-t^2 / (2 sigma^2)), |t| <= size // 2,
normalised to sum 1, applied to rows and columns as dense [L, L] matrices (any
kernel size, even one larger than the image). Borders: `padding="reflect"`
mirrors the image including the edge pixel (d c b a | a b c d | d c b a,
repeated for kernels larger than the image: scipy's 'reflect', numpy's
'symmetric'); `padding="zero"` pads with the colour `fill`.

`gaussian_smooth` takes scipy's `gaussian_filter` conventions instead: radius
r = int(truncate * sigma + 0.5), 2r + 1 taps, reflected borders; sigma = 0
returns the input.
"""

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np


def gaussian_taps(size: int, sigma: float) -> np.ndarray:
  """f64[size], the normalised taps for offsets -(size // 2)..size // 2 (size odd)."""
  offsets = np.arange(size, dtype=np.float64) - size // 2
  taps = np.exp(-0.5 * (offsets / sigma) ** 2)
  return taps / taps.sum()


def reflect_index(index: np.ndarray, length: int) -> np.ndarray:
  """Indices of any integer positions in an axis of `length` mirrored at its edges."""
  folded = np.mod(index, 2 * length)
  return np.where(folded < length, folded, 2 * length - 1 - folded)


def blur_matrix(length: int, size: int, sigma: float, padding: str) -> np.ndarray:
  """f64[length, length] B with (B @ v)[i] = sum_t w_t v[i + t], borders as `padding`.

  With padding "zero", taps falling outside the axis are dropped (their weight
  goes to the padding value, added by `gaussian_blur`).
  """
  taps = gaussian_taps(size, sigma)
  rows = np.repeat(np.arange(length), size)
  positions = rows + np.tile(np.arange(size) - size // 2, length)
  weights = np.tile(taps, length)
  if padding == "reflect":
    columns = reflect_index(positions, length)
  else:
    inside = (positions >= 0) & (positions < length)
    rows, columns, weights = rows[inside], positions[inside], weights[inside]
  matrix = np.zeros((length, length))
  np.add.at(matrix, (rows, columns), weights)
  return matrix


def gaussian_blur(images: jax.Array, size: int, sigma: float, padding: str = "reflect",
                  fill: Sequence[float] = (0.0, 0.0, 0.0)) -> jax.Array:
  """f32[...,H,W,C] -> f32[...,H,W,C], Gaussian blur (see the module doc).

  Args:
    images: f32[...,H,W,C].
    size: the kernel's width in pixels, odd.
    sigma: the Gaussian's standard deviation in pixels, > 0.
    padding: "reflect" or "zero" (pad with the colour `fill`).
    fill: the padding colour (C values) for padding "zero".
  """
  height, width = images.shape[-3], images.shape[-2]
  rows = blur_matrix(height, size, sigma, padding)
  columns = blur_matrix(width, size, sigma, padding)
  highest = jax.lax.Precision.HIGHEST
  blurred = jnp.einsum("yh,...hwc->...ywc", jnp.asarray(rows, jnp.float32), images,
                       precision=highest)
  blurred = jnp.einsum("xw,...ywc->...yxc", jnp.asarray(columns, jnp.float32), blurred,
                       precision=highest)
  if padding == "zero":
    outside = 1.0 - np.outer(rows.sum(axis=1), columns.sum(axis=1))  # weight on padding
    blurred = blurred + jnp.asarray(outside[..., None] * np.asarray(fill), jnp.float32)
  return blurred


def gaussian_smooth(images: jax.Array, sigma: float, truncate: float = 4.0) -> jax.Array:
  """f32[..., H, W, C] -> f32[..., H, W, C], smoothed as scipy's gaussian_filter (module doc)."""
  images = jnp.asarray(images, jnp.float32)
  if sigma == 0:
    return images
  return gaussian_blur(images, 2 * int(truncate * sigma + 0.5) + 1, sigma)
