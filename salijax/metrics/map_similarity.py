"""Similarity of two saliency maps of the same image, per image (Adebayo et al., NeurIPS 2018).

Every measure takes two batches of maps f32[B,H,W] and returns f32[B] (image i
of `a` against image i of `b`); 1 means identical maps. All are pure JAX and
jittable; the public functions check shapes (also under a caller's `jax.jit`)
and call one jitted program.

- `spearman`: Spearman rank correlation, with average ranks for ties (exact:
  equal values share the mean of their positions, as scipy.stats.spearmanr).
- `spearman_abs`: the same on |a| and |b| (the sign of an attribution ignored).
- `ssim`: the structural similarity of the maps min-max normalised to [0, 1]
  (a constant map becomes all zeros): Gaussian window sigma 1.5 truncated at
  3.5 sigma (11 x 11), K1 = 0.01, K2 = 0.03, data range 1, population
  (co)variances, averaged over the pixels whose window lies inside the map
  (a 5-pixel border is left out), as skimage's
  `structural_similarity(gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False, data_range=1)`. Needs H, W >= 11.
- `hog_similarity`: the Pearson correlation of the HOG features
  (`hog_features`) of the min-max normalised maps. Needs H, W >= 16.

A correlation with a map of zero variance (a constant map, or constant HOG
features) is defined as 0: no association can be measured. Maps must be
finite (checked when the values are concrete, i.e. not under a caller's jit).

    similarity = spearman(original_maps, randomized_maps)   # f32[B]
"""

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

SSIM_SIGMA = 1.5
SSIM_TRUNCATE = 3.5
SSIM_RADIUS = int(SSIM_TRUNCATE * SSIM_SIGMA + 0.5)  # 5: an 11 x 11 window
SSIM_K1 = 0.01
SSIM_K2 = 0.03
HOG_ORIENTATIONS = 9
HOG_CELL = 8  # pixels per cell (square)
HOG_BLOCK = 2  # cells per block (square)
HOG_CLIP = 0.2  # L2-Hys clipping
HOG_EPS = 1e-5


def _pearson(x: jax.Array, y: jax.Array) -> jax.Array:
  """f32[B,N], f32[B,N] -> f32[B], Pearson correlation per row (0 for zero variance)."""
  x = x - x.mean(axis=1, keepdims=True)
  y = y - y.mean(axis=1, keepdims=True)
  sxy = (x * y).sum(axis=1)
  sxx = (x * x).sum(axis=1)
  syy = (y * y).sum(axis=1)
  denominator = jnp.sqrt(sxx) * jnp.sqrt(syy)
  safe = jnp.where(denominator > 0, denominator, 1.0)
  return jnp.where(denominator > 0, jnp.clip(sxy / safe, -1.0, 1.0), 0.0)


def _average_ranks(x: jax.Array) -> jax.Array:
  """f32[N] -> f32[N], 0-based ranks; tied values share the mean of their positions."""
  n = x.shape[0]
  x = jnp.where(x == 0, 0.0, x)  # -0.0 == 0.0 is a tie; the sort orders -0.0 first
  positions = jnp.arange(n, dtype=jnp.int32)
  values, order = jax.lax.sort((x, positions), num_keys=1)
  differs = values[1:] != values[:-1]
  starts = jnp.concatenate([jnp.array([True]), differs])
  ends = jnp.concatenate([differs, jnp.array([True])])
  first = jax.lax.cummax(jnp.where(starts, positions, 0))
  last = jax.lax.cummin(jnp.where(ends, positions, n - 1), reverse=True)
  mean_position = (first + last).astype(jnp.float32) / 2
  return jnp.zeros(n, jnp.float32).at[order].set(mean_position)


@jax.jit
def _spearman(a: jax.Array, b: jax.Array) -> jax.Array:
  rank = jax.vmap(_average_ranks)
  return _pearson(rank(a.reshape(a.shape[0], -1)), rank(b.reshape(b.shape[0], -1)))


def _min_max(maps: jax.Array) -> jax.Array:
  """f32[B,H,W] -> each map rescaled to [0, 1]; a constant map becomes zeros."""
  low = maps.min(axis=(1, 2), keepdims=True)
  span = maps.max(axis=(1, 2), keepdims=True) - low
  return jnp.where(span > 0, (maps - low) / jnp.where(span > 0, span, 1.0), 0.0)


def _gaussian_valid(x: jax.Array) -> jax.Array:
  """f32[B,H,W] -> f32[B,H-10,W-10], the 11 x 11 Gaussian window's weighted means."""
  offsets = np.arange(-SSIM_RADIUS, SSIM_RADIUS + 1)
  weights = np.exp(-0.5 * (offsets / SSIM_SIGMA) ** 2)
  weights = jnp.asarray(weights / weights.sum(), jnp.float32)
  size = 2 * SSIM_RADIUS + 1
  height, width = x.shape[1] - size + 1, x.shape[2] - size + 1
  rows = sum(weights[i] * x[:, i:i + height] for i in range(size))
  return sum(weights[j] * rows[:, :, j:j + width] for j in range(size))


@jax.jit
def _ssim(a: jax.Array, b: jax.Array) -> jax.Array:
  x, y = _min_max(a), _min_max(b)
  ux, uy = _gaussian_valid(x), _gaussian_valid(y)
  vx = _gaussian_valid(x * x) - ux * ux
  vy = _gaussian_valid(y * y) - uy * uy
  vxy = _gaussian_valid(x * y) - ux * uy
  c1, c2 = SSIM_K1 ** 2, SSIM_K2 ** 2  # data range 1
  s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
  return s.mean(axis=(1, 2))


@jax.jit
def _hog_features(maps: jax.Array) -> jax.Array:
  """f32[B,H,W] -> f32[B,D] HOG features of the min-max normalised maps."""
  x = _min_max(maps)
  batch, height, width = x.shape
  zero_rows = jnp.zeros((batch, 1, width), x.dtype)
  zero_cols = jnp.zeros((batch, height, 1), x.dtype)
  g_row = jnp.concatenate([zero_rows, x[:, 2:] - x[:, :-2], zero_rows], axis=1)
  g_col = jnp.concatenate([zero_cols, x[:, :, 2:] - x[:, :, :-2], zero_cols], axis=2)
  magnitude = jnp.hypot(g_col, g_row)
  orientation = jnp.mod(jnp.rad2deg(jnp.arctan2(g_row, g_col)), 180.0)
  # Bin i holds orientations in [180 i / n, 180 (i + 1) / n), compared as skimage does.
  bounds = 180.0 / HOG_ORIENTATIONS * jnp.arange(1, HOG_ORIENTATIONS, dtype=jnp.float32)
  bins = (orientation[..., None] >= bounds).sum(axis=-1)
  votes = jax.nn.one_hot(bins, HOG_ORIENTATIONS, dtype=x.dtype) * magnitude[..., None]
  cells_r, cells_c = height // HOG_CELL, width // HOG_CELL
  votes = votes[:, :cells_r * HOG_CELL, :cells_c * HOG_CELL]
  cells = votes.reshape(batch, cells_r, HOG_CELL, cells_c, HOG_CELL, HOG_ORIENTATIONS)
  cells = cells.sum(axis=(2, 4)) / (HOG_CELL * HOG_CELL)  # f32[B,cr,cc,n]
  blocks_r, blocks_c = cells_r - HOG_BLOCK + 1, cells_c - HOG_BLOCK + 1
  blocks = jnp.stack([
      jnp.stack([cells[:, i:i + blocks_r, j:j + blocks_c] for j in range(HOG_BLOCK)], axis=3)
      for i in range(HOG_BLOCK)], axis=3)  # f32[B,br,bc,HOG_BLOCK,HOG_BLOCK,n]

  def l2_normalize(v: jax.Array) -> jax.Array:
    return v / jnp.sqrt((v * v).sum(axis=(3, 4, 5), keepdims=True) + HOG_EPS ** 2)

  blocks = l2_normalize(jnp.minimum(l2_normalize(blocks), HOG_CLIP))  # L2-Hys
  return blocks.reshape(batch, -1)


@jax.jit
def _hog_similarity(a: jax.Array, b: jax.Array) -> jax.Array:
  return _pearson(_hog_features(a), _hog_features(b))


def _check_map_batch(maps: Any, name: str, min_size: int) -> None:
  shape = getattr(maps, "shape", None)
  dtype = getattr(maps, "dtype", None)
  if shape is None or dtype is None:
    raise TypeError(f"{name} must be an array f32[B,H,W], got {type(maps).__name__}")
  if len(shape) != 3 or shape[0] == 0:
    raise ValueError(f"{name} must have shape [B, H, W] with B >= 1, got {tuple(shape)}")
  if not jnp.issubdtype(dtype, jnp.floating):
    raise TypeError(f"{name} must be floating point, got dtype {dtype}")
  if min(shape[1:]) < min_size:
    raise ValueError(f"{name} must be at least {min_size} x {min_size} pixels for this"
                     f" similarity, got {tuple(shape[1:])}")
  if not isinstance(maps, jax.core.Tracer) and not np.isfinite(np.asarray(maps)).all():
    raise ValueError(f"{name} must be finite, got non-finite values")


def _check_pair(a: Any, b: Any, min_size: int = 1) -> tuple[jax.Array, jax.Array]:
  _check_map_batch(a, "a", min_size)
  _check_map_batch(b, "b", min_size)
  if tuple(a.shape) != tuple(b.shape):
    raise ValueError(f"a and b must have the same shape [B, H, W], got {tuple(a.shape)} and"
                     f" {tuple(b.shape)}")
  return jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32)


def spearman(a: Any, b: Any) -> jax.Array:
  """f32[B,H,W], f32[B,H,W] -> f32[B], Spearman rank correlation of each pair of maps.

  Average ranks for ties; 0 where either map is constant. Maps must be finite.
  """
  return _spearman(*_check_pair(a, b))


def spearman_abs(a: Any, b: Any) -> jax.Array:
  """f32[B,H,W], f32[B,H,W] -> f32[B], `spearman` of |a| and |b|."""
  a, b = _check_pair(a, b)
  return _spearman(jnp.abs(a), jnp.abs(b))


def ssim(a: Any, b: Any) -> jax.Array:
  """f32[B,H,W], f32[B,H,W] (H, W >= 11) -> f32[B], SSIM of the min-max normalised maps."""
  return _ssim(*_check_pair(a, b, min_size=2 * SSIM_RADIUS + 1))


def hog_features(maps: Any) -> jax.Array:
  """f32[B,H,W] (H, W >= 16) -> f32[B,D], HOG features of the min-max normalised maps.

  skimage.feature.hog's with orientations=9, pixels_per_cell=(8, 8),
  cells_per_block=(2, 2), block_norm="L2-Hys", no gamma correction, in f32:
  central-difference gradients (zero on the border rows/columns), unsigned
  orientations in [0, 180) binned into 9 equal bins, each cell's histogram of
  gradient magnitudes divided by its 64 pixels (pixels beyond the last whole
  cell are dropped), overlapping 2 x 2-cell blocks L2-normalised, clipped at
  0.2 and L2-normalised again (eps 1e-5), flattened as [row, col, cell row,
  cell col, orientation]: D = (H//8 - 1)(W//8 - 1) * 36.
  """
  _check_map_batch(maps, "maps", HOG_CELL * HOG_BLOCK)
  return _hog_features(jnp.asarray(maps, jnp.float32))


def hog_similarity(a: Any, b: Any) -> jax.Array:
  """f32[B,H,W], f32[B,H,W] (H, W >= 16) -> f32[B], Pearson correlation of `hog_features`."""
  return _hog_similarity(*_check_pair(a, b, min_size=HOG_CELL * HOG_BLOCK))


SIMILARITIES: dict[str, Callable[[Any, Any], jax.Array]] = {
    "spearman": spearman,
    "spearman_abs": spearman_abs,
    "ssim": ssim,
    "hog": hog_similarity,
}
MIN_MAP_SIZE = {"spearman": 1, "spearman_abs": 1, "ssim": 2 * SSIM_RADIUS + 1,
                "hog": HOG_CELL * HOG_BLOCK}


def similarity(name: str) -> Callable[[Any, Any], jax.Array]:
  """The similarity measure called `name` (one of `SIMILARITIES`)."""
  if name not in SIMILARITIES:
    raise ValueError(f"similarity: expected one of {list(SIMILARITIES)}, got {name!r}")
  return SIMILARITIES[name]

