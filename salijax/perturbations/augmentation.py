"""Geometric augmentations of images and saliency maps, with the mask of their valid pixels.

An augmentation is named as in the benchmark's `config.perturbations`:

  rotate<d>   rotation by d degrees counter-clockwise (as displayed, rows
              downwards: rotate90 is numpy.rot90; a negative d turns
              clockwise) about the image centre
  resize<f>   the image shrunk by f in (0, 1] about its centre, framed by a
              border of zeros to keep H x W (the classifier needs a fixed size)
  crop<f>     the central crop of fraction f in (0, 1] of each side, scaled
              back to H x W

e.g. "rotate45", "resize0.75", "crop0.8". Each is an inverse map: output pixel
(r, c) takes the bilinear interpolation of the input at a source point, with
pixel centres at integer coordinates and the centre at
(cy, cx) = ((H - 1) / 2, (W - 1) / 2):

  rotate<d>: (r', c') = (cy + sin(d) (c - cx) + cos(d) (r - cy),
                         cx + cos(d) (c - cx) - sin(d) (r - cy))
  resize<f>: (r', c') = (cy + (r - cy) / f,  cx + (c - cx) / f)
  crop<f>:   (r', c') = (cy + f (r - cy),    cx + f (c - cx))

(the last two are the pixel-centre convention of resizing: crop<f> maps the
output onto the central f H x f W of the input). A pixel is valid when its
source point lies inside the grid of input pixel centres, [0, H - 1] x
[0, W - 1], up to 1e-3 px (float rounding); the others are out of the image,
set to 0 and excluded from comparisons (`salijax.metrics.explanation_robustness`).
The coefficients are computed in float64 and rounded to 12 decimals, so
rotations by multiples of 90 degrees and identities ("rotate0", "crop1")
move whole pixels exactly. crop<f> keeps every pixel valid; resize<f> and
rotations (other than by multiples of 180 degrees on any image, or 90 on a
square one) have invalid pixels.

The same augmentation applied to an image and to its saliency map lets a
method's map of the augmented image be compared with the augmented map of the
original image (robustness under augmentation, ACML 2024). The functions are
pure and jittable in the arrays (the name is static); every augmentation of
one size runs the same compiled program.

    augmented = augment_images(images, "rotate45")   # f32[B,H,W,C]
    moved = augment_maps(maps, "rotate45")            # f32[B,H,W]
    valid = valid_pixels("rotate45", H, W)            # bool[H,W] (numpy)
"""

import functools
import math
import re
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from salijax import validation

KINDS = ("rotate", "resize", "crop")
TOLERANCE = 1e-3  # px: a source point this far outside the pixel grid still counts as inside
DECIMALS = 12  # the coefficients' rounding (module doc)
_NAME = re.compile(r"(rotate|resize|crop)(-?\d+(?:\.\d+)?)")


class Augmentation(NamedTuple):
  """A parsed augmentation name."""

  kind: str  # one of KINDS
  amount: float  # degrees (rotate) or the fraction f (resize, crop)


def parse_augmentation(name: Any) -> Augmentation:
  """"rotate45" -> Augmentation("rotate", 45.0) (module doc for the names).

  Raises:
    TypeError: name not a str.
    ValueError: an unknown kind, a malformed number, or a fraction outside (0, 1].
  """
  if not isinstance(name, str):
    raise TypeError(f"name must be an augmentation name (str), got {type(name).__name__}")
  match = _NAME.fullmatch(name)
  if match is None:
    raise ValueError(f"name must be one of {[k + '<number>' for k in KINDS]} (e.g. 'rotate45',"
                     f" 'resize0.75', 'crop0.8'), got {name!r}")
  kind, amount = match.group(1), float(match.group(2))
  if kind != "rotate" and not 0.0 < amount <= 1.0:
    raise ValueError(f"name: the fraction of {kind} must be in (0, 1], got {name!r}")
  return Augmentation(kind, amount)


@functools.lru_cache(maxsize=64)
def _cached_source_points(augmentation: Augmentation, height: int,
                          width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  kind, amount = augmentation
  cy, cx = (height - 1) / 2, (width - 1) / 2
  dy, dx = np.meshgrid(np.arange(height) - cy, np.arange(width) - cx, indexing="ij")
  if kind == "rotate":
    angle = math.radians(amount)
    cos, sin = round(math.cos(angle), DECIMALS), round(math.sin(angle), DECIMALS)
    rows, cols = cy + sin * dx + cos * dy, cx + cos * dx - sin * dy
  else:
    scale = 1.0 / amount if kind == "resize" else amount
    rows, cols = cy + scale * dy, cx + scale * dx
  valid = ((rows >= -TOLERANCE) & (rows <= height - 1 + TOLERANCE)
           & (cols >= -TOLERANCE) & (cols <= width - 1 + TOLERANCE))
  rows = np.clip(rows, 0, height - 1).astype(np.float32)
  cols = np.clip(cols, 0, width - 1).astype(np.float32)
  for array in (rows, cols, valid):
    array.flags.writeable = False  # cached: shared by every caller
  return rows, cols, valid


def _source_points(name: str, height: int, width: int) -> tuple[np.ndarray, np.ndarray,
                                                                  np.ndarray]:
  """(source rows f32[H,W], source columns f32[H,W], valid bool[H,W]) (module doc)."""
  return _cached_source_points(parse_augmentation(name), height, width)


def valid_pixels(name: str, height: int, width: int) -> np.ndarray:
  """bool[H,W]: the output pixels whose source lies inside the image (module doc).

  Raises:
    ValueError, TypeError: a bad name (`parse_augmentation`) or size.
  """
  validation.check_positive_int(height, "height")
  validation.check_positive_int(width, "width")
  return _source_points(name, int(height), int(width))[2].copy()


@jax.jit
def _warp(x: jax.Array, rows: jax.Array, cols: jax.Array, valid: jax.Array) -> jax.Array:
  """f32[B,H,W,C] sampled bilinearly at (rows, cols) f32[H,W], 0 where not valid."""
  height, width = x.shape[1], x.shape[2]
  r0 = jnp.floor(rows).astype(jnp.int32)
  c0 = jnp.floor(cols).astype(jnp.int32)
  r1 = jnp.minimum(r0 + 1, height - 1)
  c1 = jnp.minimum(c0 + 1, width - 1)
  wr = (rows - r0)[None, :, :, None]
  wc = (cols - c0)[None, :, :, None]
  top = x[:, r0, c0] * (1 - wc) + x[:, r0, c1] * wc
  bottom = x[:, r1, c0] * (1 - wc) + x[:, r1, c1] * wc
  return jnp.where(valid[None, :, :, None], top * (1 - wr) + bottom * wr, 0.0)


def augment_images(images: Any, name: str) -> jax.Array:
  """The augmentation `name` of every image (module doc).

  Args:
    images: f32[B,H,W,C], finite (any range: bilinear interpolation keeps it).
    name: the augmentation, e.g. "rotate45", "resize0.75", "crop0.8".

  Returns:
    f32[B,H,W,C], 0 at the pixels that are not `valid_pixels(name, H, W)`.

  Raises:
    ValueError: images not [B,H,W,C] (no empty axis) or non-finite; a bad name.
    TypeError: non-array or non-floating images; a name that is not a str.
  """
  shape = getattr(images, "shape", None)
  dtype = getattr(images, "dtype", None)
  if shape is None or dtype is None:
    raise TypeError(f"images must be an array f32[B,H,W,C], got {type(images).__name__}")
  if len(shape) != 4 or 0 in shape:
    raise ValueError(f"images must have shape [B, H, W, C] with no empty axis, got"
                     f" {tuple(shape)}")
  if not jnp.issubdtype(dtype, jnp.floating):
    raise TypeError(f"images must be floating point, got dtype {dtype}")
  if validation.is_concrete(images) and not np.isfinite(np.asarray(images)).all():
    raise ValueError("images must be finite, got non-finite values")
  rows, cols, valid = _source_points(name, int(shape[1]), int(shape[2]))
  return _warp(jnp.asarray(images, jnp.float32), rows, cols, valid)


def augment_maps(maps: Any, name: str) -> jax.Array:
  """The augmentation `name` of every saliency map: f32[B,H,W] -> f32[B,H,W] (module doc).

  Raises:
    ValueError: maps not [B,H,W] (no empty axis) or non-finite; a bad name.
    TypeError: non-array or non-floating maps; a name that is not a str.
  """
  _, height, width = validation.check_map_batch(maps)
  rows, cols, valid = _source_points(name, height, width)
  return _warp(jnp.asarray(maps, jnp.float32)[..., None], rows, cols, valid)[..., 0]
