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

from salijax.gaussian_blur import gaussian_blur

SUBSTRATES = ("blur", "mean", "zero")
SPACES = ("normalised", "pixel")
PADDINGS = ("reflect", "zero")


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
