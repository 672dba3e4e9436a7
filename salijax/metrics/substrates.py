"""Substrates: what replaces (deletion) or precedes (insertion) the pixels of an image.

Every substrate is an image f32[B,H,W,3] in pixel space. A substrate may be
defined in the classifier's normalised space, z = (x - mean) / std per
channel; since that map is affine per channel, the pixel-space image that the
classifier normalises into the definition is computed instead (std cancels):

  "mean": the colour `mean` everywhere (0 in normalised space), in either space.
  "zero": 0 in `space`: black in "pixel" space, the colour `mean` in "normalised".
  "blur": a Gaussian blur of the image, `size` x `size` taps w_t proportional to
      exp(-t^2 / (2 sigma^2)), |t| <= size // 2, normalised to sum 1, applied to
      rows and columns (separable). Borders: `padding="reflect"` mirrors the
      image including the edge pixel (d c b a | a b c d | d c b a, repeated for
      kernels larger than the image) and is the same in both spaces;
      `padding="zero"` pads with 0 in `space` (black, or the colour `mean`),
      as a convolution with zero padding on normalised tensors does.
"""

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

SUBSTRATES = ("blur", "mean", "zero")
SPACES = ("normalised", "pixel")
PADDINGS = ("reflect", "zero")


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
  """f32[B,H,W,3] -> f32[B,H,W,3], Gaussian blur (see the module doc).

  Args:
    images: f32[B,H,W,3].
    size: the kernel's width in pixels, odd.
    sigma: the Gaussian's standard deviation in pixels, > 0.
    padding: "reflect" or "zero" (pad with the colour `fill`).
    fill: the padding colour (3 values) for padding "zero".
  """
  _, height, width, _ = images.shape
  rows = blur_matrix(height, size, sigma, padding)
  columns = blur_matrix(width, size, sigma, padding)
  highest = jax.lax.Precision.HIGHEST
  blurred = jnp.einsum("yh,bhwc->bywc", jnp.asarray(rows, jnp.float32), images,
                       precision=highest)
  blurred = jnp.einsum("xw,bywc->byxc", jnp.asarray(columns, jnp.float32), blurred,
                       precision=highest)
  if padding == "zero":
    outside = 1.0 - np.outer(rows.sum(axis=1), columns.sum(axis=1))  # weight on padding
    blurred = blurred + jnp.asarray(outside[..., None] * np.asarray(fill), jnp.float32)
  return blurred


def substrate(images: jax.Array, name: str, *, space: str, mean: Sequence[float],
              blur_size: int, blur_sigma: float, blur_padding: str) -> jax.Array:
  """f32[B,H,W,3] pixels -> the substrate `name` f32[B,H,W,3] in pixel space (module doc).

  Args:
    images: f32[B,H,W,3] in [0, 1].
    name: "blur", "mean" or "zero".
    space: "normalised" or "pixel", where the substrate's zeros are defined.
    mean: the classifier's normalisation mean (3 values), the colour of 0 in
      normalised space.
    blur_size, blur_sigma, blur_padding: the blur's kernel width (odd),
      standard deviation (pixels) and border rule ("reflect" or "zero").
  """
  zero = np.asarray(mean if space == "normalised" else (0.0, 0.0, 0.0), np.float32)
  if name == "blur":
    return gaussian_blur(images, blur_size, blur_sigma, blur_padding, zero)
  colour = np.asarray(mean, np.float32) if name == "mean" else zero
  return jnp.broadcast_to(jnp.asarray(colour), images.shape)
