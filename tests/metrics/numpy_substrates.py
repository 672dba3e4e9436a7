"""Slow numpy references of the substrates, written from their definitions (float64).

A substrate defined in normalised space is computed there, z = (x - mean) / std,
and mapped back to pixels, so these references also check that std cancels.
"""

import numpy as np

MEAN = np.array([0.485, 0.456, 0.406])
STD = np.array([0.229, 0.224, 0.225])


def blur(images: np.ndarray, size: int, sigma: float, padding: str, space: str) -> np.ndarray:
  """f64[B,H,W,3]: a direct 2D correlation with the size x size Gaussian in `space`."""
  offsets = np.arange(size) - size // 2
  dy, dx = np.meshgrid(offsets, offsets, indexing="ij")
  kernel = np.exp(-(dy ** 2 + dx ** 2) / (2 * sigma ** 2))
  kernel /= kernel.sum()
  values = (images - MEAN) / STD if space == "normalised" else np.asarray(images, np.float64)
  radius = size // 2
  pad = ((0, 0), (radius, radius), (radius, radius), (0, 0))
  padded = (np.pad(values, pad, mode="symmetric") if padding == "reflect"
            else np.pad(values, pad, mode="constant", constant_values=0.0))
  height, width = images.shape[1:3]
  out = np.zeros_like(values)
  for i in range(size):
    for j in range(size):
      out += kernel[i, j] * padded[:, i:i + height, j:j + width]
  return out * STD + MEAN if space == "normalised" else out


def substrate(images: np.ndarray, name: str, space: str, size: int = 11, sigma: float = 5.0,
              padding: str = "reflect") -> np.ndarray:
  """f64[B,H,W,3] pixels: "blur", "mean" (the colour MEAN) or "zero" (0 in `space`)."""
  if name == "blur":
    return blur(images, size, sigma, padding, space)
  values = np.zeros(images.shape)
  if name == "mean" or space == "normalised":
    values = values * STD + MEAN  # 0 in normalised space
  return values
