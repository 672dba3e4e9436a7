"""Robustness of explanations: the map of a perturbed image against the perturbed map.

For a perturbation p of the images (a geometric augmentation,
`salijax.perturbations`, or an adversarial step, whose geometry is the
identity), a method is robust when its map of p(I) equals p applied to its
map of I. Both maps are compared on the valid pixels only (those whose source
lies inside the image; every pixel for an identity geometry), with the
measures of `salijax.metrics.map_similarity`:

  spearman  Spearman rank correlation over the valid pixels (average ranks
            for ties; 0 where either map is constant there)
  ssim      SSIM (11 x 11 Gaussian window, maps min-max normalised) over the
            largest axis-aligned rectangle of valid pixels: the whole map for
            an identity or a crop, the central f H x f W for resize<f>, about
            the central square of side H / sqrt(2) for a rotation by 45
            degrees. A windowed measure needs a full rectangle; the rectangle
            is the first of the largest in the order (top row, bottom row, left
            column), and must be at least 11 x 11 pixels.

1 means identical maps. The valid pixels are shared by the batch (they depend
on the image size, not on the image): `valid` is a concrete bool[H,W]. The
maps may be traced (the function works under a caller's `jax.jit`).

    valid = perturbations.valid_pixels("rotate45", H, W)
    result = explanation_robustness(maps_of_rotated_images,
                                    perturbations.augment_maps(maps, "rotate45"), valid)
    result.spearman, result.ssim          # f32[B]
"""

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from salijax import validation
from salijax.metrics import map_similarity

SSIM_MIN_SIZE = map_similarity.MIN_MAP_SIZE["ssim"]


class ExplanationRobustness(NamedTuple):
  """Per-image similarity of the map of p(I) and p(map of I) (see the module doc)."""

  spearman: jax.Array  # f32[B], Spearman rank correlation over the valid pixels
  ssim: jax.Array  # f32[B], SSIM over the largest rectangle of valid pixels


@functools.lru_cache(maxsize=64)
def _largest_rectangle(valid_bytes: bytes, height: int, width: int) -> tuple[int, int, int, int]:
  valid = np.frombuffer(valid_bytes, np.bool_).reshape(height, width)
  best, best_area = (0, 0, 0, 0), 0
  columns = np.arange(width)
  for top in range(height):
    # inside[i, c]: column c is valid in every row top..top+i; run[i, c]: the length of the run
    # of such columns that ends at c.
    inside = np.logical_and.accumulate(valid[top:], axis=0)
    last_outside = np.maximum.accumulate(np.where(inside, -1, columns), axis=1)
    run = np.where(inside, columns - last_outside, 0)
    areas = run * np.arange(1, height - top + 1)[:, None]
    i, c = np.unravel_index(np.argmax(areas), areas.shape)  # first of the largest
    if areas[i, c] > best_area:
      best_area = int(areas[i, c])
      best = (top, top + int(i) + 1, int(c - run[i, c] + 1), int(c) + 1)
  return best


def largest_valid_rectangle(valid: Any) -> tuple[int, int, int, int]:
  """(top, bottom, left, right), half-open, of the largest all-True rectangle (module doc).

  Args:
    valid: bool[H,W], concrete.

  Returns:
    Row and column bounds; (0, 0, 0, 0) when no pixel is True.

  Raises:
    ValueError: valid not [H,W].
    TypeError: valid not a concrete boolean array.
  """
  valid = _checked_valid(valid)
  return _largest_rectangle(valid.tobytes(), *valid.shape)


def _checked_valid(valid: Any) -> np.ndarray:
  if not validation.is_concrete(valid):
    raise TypeError("valid must be a concrete bool[H,W] (it depends on the image size only:"
                    " pass it as a constant, not a traced value)")
  dtype = getattr(valid, "dtype", None)
  if dtype is None or dtype != np.bool_:
    raise TypeError(f"valid must be a boolean array bool[H,W], got "
                    f"{type(valid).__name__ if dtype is None else f'dtype {dtype}'}")
  valid = np.asarray(valid)
  if valid.ndim != 2:
    raise ValueError(f"valid must have shape [H, W], got {valid.shape}")
  return valid


def explanation_robustness(map_of_perturbed: Any, perturbed_map: Any,
                           valid: Any) -> ExplanationRobustness:
  """Spearman and SSIM of the map of p(I) against p(map of I), on valid pixels (module doc).

  Args:
    map_of_perturbed: f32[B,H,W], the method's maps of the perturbed images.
    perturbed_map: f32[B,H,W], the perturbation applied to the maps of the
      original images.
    valid: bool[H,W], concrete, the pixels compared (shared by the batch).

  Returns:
    ExplanationRobustness of f32[B].

  Raises:
    ValueError: maps not [B,H,W], of different shapes or non-finite; valid
      not [H,W] like the maps, or with no rectangle of 11 x 11 valid pixels.
    TypeError: non-array or non-floating maps; valid not a concrete bool array.
  """
  shape = validation.check_map_batch(map_of_perturbed, "map_of_perturbed")
  other = validation.check_map_batch(perturbed_map, "perturbed_map")
  if other != shape:
    raise ValueError(f"perturbed_map must have the shape of map_of_perturbed {shape}, got"
                     f" {other}")
  valid = _checked_valid(valid)
  if valid.shape != shape[1:]:
    raise ValueError(f"valid must have the maps' shape [H, W] = {list(shape[1:])}, got"
                     f" {list(valid.shape)}")
  top, bottom, left, right = largest_valid_rectangle(valid)
  if min(bottom - top, right - left) < SSIM_MIN_SIZE:
    raise ValueError(f"valid must hold a rectangle of at least {SSIM_MIN_SIZE} x"
                     f" {SSIM_MIN_SIZE} valid pixels for SSIM, got at most"
                     f" {bottom - top} x {right - left}")
  pixels = np.flatnonzero(valid)
  batch = shape[0]
  a = jnp.asarray(map_of_perturbed, jnp.float32)
  b = jnp.asarray(perturbed_map, jnp.float32)
  spearman = map_similarity.spearman(a.reshape(batch, 1, -1)[:, :, pixels],
                                     b.reshape(batch, 1, -1)[:, :, pixels])
  ssim = map_similarity.ssim(a[:, top:bottom, left:right], b[:, top:bottom, left:right])
  return ExplanationRobustness(spearman=spearman, ssim=ssim)
