"""The pointing game (Zhang et al., ECCV 2016) and its energy-based variant (Score-CAM paper).

Both score a map L f32[H,W] against the labelled object's region, given as a
mask bool[B,H,W] or as boxes f32[B,4] (ymin, xmin, ymax, xmax) normalised to
[0, 1] with pixel edges (like `salijax.data`'s `bbox`: a box with ymin = 2/H
and ymax = 6/H covers rows 2..5). A box becomes a mask by pixel centres:
pixel (r, c) lies in the box when ymin H <= r + 1/2 <= ymax H and
xmin W <= c + 1/2 <= xmax W.

Pointing game: a pixel is maximal when its value equals the map's maximum
exactly; the map hits when ANY maximal pixel lies within `tolerance` pixels
of the region (the tie rule: a map with several maxima hits if one of them is
close; an all-ones map hits every non-empty region). Distances are Euclidean
between pixel centres (row and column indices), computed exactly by a
separable squared distance transform in integers: per column, the distance
to the nearest region pixel in that column (a forward and a backward running
extremum), then per row the minimum over columns c' of g(r, c')^2 + (c - c')^2.
A maximal pixel exactly `tolerance` pixels away hits. Accuracy is the mean
over classes of hits / (hits + misses): `pointing_accuracy`.

Energy-based pointing game: with L01 = (L - min L) / (max L - min L),
proportion = sum of L01 inside the region / sum of L01 (a constant map, which
has no range, counts as 1 everywhere: its proportion is the region's area
fraction, also returned as the chance level of a uniform map).

    result = pointing_game(maps, masks_or_boxes)              # .hit bool[B]
    pointing_accuracy(result.hit, labels, num_classes).accuracy
    energy_pointing_game(maps, masks_or_boxes).proportion      # f32[B]
"""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from salijax import validation

DEFAULT_TOLERANCE = 15.0  # pixels (Zhang et al.)


class PointingGame(NamedTuple):
  """Per-image results of the pointing game (see the module doc)."""

  hit: jax.Array  # bool[B], some maximal pixel within `tolerance` px of the region
  distance: jax.Array  # f32[B], px from the nearest maximal pixel to the region (0 inside)
  num_maxima: jax.Array  # i32[B], pixels that share the maximum (> 1: a tie)


class EnergyPointingGame(NamedTuple):
  """Per-image results of the energy-based pointing game (see the module doc)."""

  proportion: jax.Array  # f32[B], sum of L01 in the region / sum of L01
  region_fraction: jax.Array  # f32[B], the region's share of the pixels (a uniform map's score)


class PointingAccuracy(NamedTuple):
  """Pointing accuracy over classes; classes without examples are NaN and excluded."""

  accuracy: jax.Array  # f32[], mean over classes with examples of class_accuracy
  class_accuracy: jax.Array  # f32[K], hits / (hits + misses), NaN for classes without examples
  class_count: jax.Array  # i32[K], the (valid) examples of each class


def boxes_to_masks(boxes: jax.Array, height: int, width: int) -> jax.Array:
  """f32[B,4] (ymin, xmin, ymax, xmax) in [0, 1] -> bool[B,H,W] by pixel centres (module doc)."""
  rows = (jnp.arange(height, dtype=jnp.float32) + 0.5)[None, :]
  cols = (jnp.arange(width, dtype=jnp.float32) + 0.5)[None, :]
  ymin, xmin, ymax, xmax = (boxes[:, i:i + 1].astype(jnp.float32) for i in range(4))
  in_rows = (ymin * height <= rows) & (rows <= ymax * height)  # bool[B,H]
  in_cols = (xmin * width <= cols) & (cols <= xmax * width)  # bool[B,W]
  return in_rows[:, :, None] & in_cols[:, None, :]


def region_masks(region: Any, shape: tuple[int, int, int]) -> jax.Array:
  """Checks `region` (mask bool[B,H,W] or boxes f32[B,4]) and returns bool[B,H,W]."""
  batch, height, width = shape
  got_shape = getattr(region, "shape", None)
  dtype = getattr(region, "dtype", None)
  if got_shape is None or dtype is None:
    raise TypeError(f"region must be a mask bool[B,H,W] or boxes f32[B,4], got"
                    f" {type(region).__name__}")
  got_shape = tuple(got_shape)
  if got_shape == shape:
    if dtype != jnp.bool_:
      raise TypeError(f"region must be a mask of dtype bool (or boxes f32[B,4]), got dtype"
                      f" {dtype}")
    masks = jnp.asarray(region)
  elif got_shape == (batch, 4):
    if not jnp.issubdtype(dtype, jnp.floating):
      raise TypeError(f"region boxes must be floating point (ymin, xmin, ymax, xmax) in [0, 1],"
                      f" got dtype {dtype}")
    if validation.is_concrete(region):
      values = np.asarray(region, np.float64)
      bad = ~(np.isfinite(values).all(axis=1) & (values >= 0).all(axis=1)
              & (values <= 1).all(axis=1) & (values[:, 0] <= values[:, 2])
              & (values[:, 1] <= values[:, 3]))
      if bad.any():
        raise ValueError(
            "region boxes must be (ymin, xmin, ymax, xmax) in [0, 1] with ymin <= ymax and"
            f" xmin <= xmax, got {values[bad][:3].tolist()} at batch indices"
            f" {np.flatnonzero(bad)[:5].tolist()}")
    masks = boxes_to_masks(jnp.asarray(region), height, width)
  else:
    raise ValueError(f"region must be a mask bool{list(shape)} like the maps or boxes"
                     f" f32[{batch}, 4], got shape {list(got_shape)}")
  if validation.is_concrete(masks):
    empty = ~np.asarray(masks).reshape(batch, -1).any(axis=1)
    if empty.any():
      raise ValueError(f"region must hold at least one pixel per image, got empty regions at"
                       f" batch indices {np.flatnonzero(empty)[:5].tolist()}")
  return masks


def squared_distance_to_region(masks: jax.Array) -> jax.Array:
  """bool[B,H,W] -> i32[B,H,W], exact squared Euclidean distance to the nearest True pixel.

  Images without a True pixel get distances >= (2 (H + W))^2, beyond any real one.
  """
  _, height, width = masks.shape
  far = 2 * (height + width)
  rows = jnp.arange(height, dtype=jnp.int32)[None, :, None]
  # Per column: the nearest region row at or above, and at or below, each row.
  above = jax.lax.cummax(jnp.where(masks, rows, -far), axis=1)
  below = jax.lax.cummin(jnp.where(masks, rows, height + far), axis=1, reverse=True)
  column_sq = jnp.square(jnp.minimum(rows - above, below - rows))  # i32[B,H,W]
  cols = jnp.arange(width, dtype=jnp.int32)

  def over_column(c: jax.Array, best: jax.Array) -> jax.Array:
    candidate = column_sq[:, :, c][:, :, None] + jnp.square(cols - c)  # i32[B,H,W]
    return jnp.minimum(best, candidate)

  start = jnp.full(masks.shape, jnp.iinfo(jnp.int32).max, jnp.int32)
  return jax.lax.fori_loop(0, width, over_column, start)


@jax.jit
def _pointing_game(maps: jax.Array, masks: jax.Array,
                   tolerance_sq: jax.Array) -> PointingGame:
  """The jitted pointing game: f32[B,H,W], bool[B,H,W], f32[] -> PointingGame."""
  maximal = maps == maps.max(axis=(1, 2), keepdims=True)
  distance_sq = squared_distance_to_region(masks)
  nearest_sq = jnp.where(maximal, distance_sq, jnp.iinfo(jnp.int32).max).min(axis=(1, 2))
  has_region = masks.any(axis=(1, 2))
  hit = has_region & (nearest_sq.astype(jnp.float32) <= tolerance_sq)
  distance = jnp.where(has_region, jnp.sqrt(nearest_sq.astype(jnp.float32)), jnp.inf)
  return PointingGame(hit=hit, distance=distance,
                      num_maxima=maximal.sum(axis=(1, 2), dtype=jnp.int32))


def pointing_game(maps: Any, region: Any, *,
                  tolerance: float = DEFAULT_TOLERANCE) -> PointingGame:
  """Whether each map's maximum lies within `tolerance` px of the region (module doc).

  Args:
    maps: f32[B,H,W], larger = more salient.
    region: the labelled object, a mask bool[B,H,W] or boxes f32[B,4]
      (ymin, xmin, ymax, xmax) in [0, 1], pixel edges (module doc for the rule).
    tolerance: the largest hitting distance in pixels (>= 0), inclusive.

  Returns:
    PointingGame: hit bool[B], distance f32[B], num_maxima i32[B].

  Raises:
    ValueError: maps not [B,H,W] or non-finite; region of the wrong shape, boxes
      outside [0, 1], or an empty region (the batch indices are named); bad tolerance.
    TypeError: non-array maps or region, wrong dtypes.
  """
  shape = validation.check_map_batch(maps)
  masks = region_masks(region, shape)
  number = isinstance(tolerance, (int, float, np.integer, np.floating))
  if isinstance(tolerance, bool) or not number or not 0 <= tolerance < np.inf:
    raise ValueError(f"tolerance must be a finite number of pixels >= 0, got {tolerance!r}")
  return _pointing_game(jnp.asarray(maps, jnp.float32), masks,
                        jnp.float32(float(tolerance) ** 2))


@jax.jit
def _energy_pointing_game(maps: jax.Array, masks: jax.Array) -> EnergyPointingGame:
  """The jitted energy-based pointing game: f32[B,H,W], bool[B,H,W] -> EnergyPointingGame."""
  low = maps.min(axis=(1, 2), keepdims=True)
  span = maps.max(axis=(1, 2), keepdims=True) - low
  unit = jnp.where(span > 0, (maps - low) / jnp.where(span > 0, span, 1.0), 1.0)
  inside = jnp.where(masks, unit, 0.0).sum(axis=(1, 2))
  return EnergyPointingGame(proportion=inside / unit.sum(axis=(1, 2)),
                            region_fraction=masks.mean(axis=(1, 2), dtype=jnp.float32))


def energy_pointing_game(maps: Any, region: Any) -> EnergyPointingGame:
  """The share of each min-max normalised map inside the region (module doc).

  Args:
    maps: f32[B,H,W], larger = more salient; any real values.
    region: a mask bool[B,H,W] or boxes f32[B,4] (ymin, xmin, ymax, xmax) in
      [0, 1], as for `pointing_game`.

  Returns:
    EnergyPointingGame: proportion f32[B] in [0, 1], region_fraction f32[B].

  Raises:
    ValueError, TypeError: as `pointing_game`.
  """
  shape = validation.check_map_batch(maps)
  masks = region_masks(region, shape)
  return _energy_pointing_game(jnp.asarray(maps, jnp.float32), masks)


def pointing_accuracy(hit: Any, labels: Any, num_classes: int,
                      valid: Any = None) -> PointingAccuracy:
  """Mean over classes of hits / (hits + misses), classes without examples excluded.

  Concatenate the `hit` of every batch before calling it: the mean is over
  classes, not over batches.

  Args:
    hit: bool[N], `PointingGame.hit` of N images.
    labels: i32[N], each image's class in [0, num_classes).
    num_classes: K.
    valid: bool[N], which images count (False for the padding of a last
      batch); None counts every image.

  Returns:
    PointingAccuracy: accuracy f32[] (NaN when no image counts),
    class_accuracy f32[K], class_count i32[K].

  Raises:
    ValueError: shapes that disagree, class indices outside [0, K), no valid image.
    TypeError: wrong dtypes.
  """
  if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) \
      or num_classes < 1:
    raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
  shape = getattr(hit, "shape", None)
  if shape is None or len(shape) != 1 or getattr(hit, "dtype", None) != jnp.bool_:
    raise TypeError(f"hit must be bool[N] (PointingGame.hit), got {hit!r:.80}")
  count = int(shape[0])
  if valid is None:
    valid = jnp.ones(count, bool)
  checks = (("labels", labels, jnp.integer, "an integer dtype"),
            ("valid", valid, jnp.bool_, "dtype bool"))
  for name, value, kind, kind_name in checks:
    if getattr(value, "dtype", None) is None:
      raise TypeError(f"{name} must be an array [{count}], got {type(value).__name__}")
    if tuple(value.shape) != (count,):
      raise ValueError(f"{name} must have shape [{count}] like hit, got"
                       f" {tuple(value.shape)}")
    if not jnp.issubdtype(value.dtype, kind):
      raise TypeError(f"{name} must have {kind_name}, got {value.dtype}")
  if validation.is_concrete(labels):
    values = np.asarray(labels)
    bad = values[(values < 0) | (values >= num_classes)]
    if bad.size:
      raise ValueError(f"labels must be class indices in [0, {num_classes}), got"
                       f" {bad[:5].tolist()}")
  if validation.is_concrete(valid) and not np.asarray(valid).any():
    raise ValueError("valid must mark at least one image, got none")
  return _pointing_accuracy(jnp.asarray(hit), jnp.asarray(labels, jnp.int32),
                            jnp.asarray(valid), num_classes=int(num_classes))


def _pointing_accuracy(hit: jax.Array, labels: jax.Array, valid: jax.Array, *,
                       num_classes: int) -> PointingAccuracy:
  """bool[N], i32[N], bool[N] -> PointingAccuracy (traceable)."""
  counts = jax.ops.segment_sum(valid.astype(jnp.int32), labels, num_segments=num_classes)
  hits = jax.ops.segment_sum((hit & valid).astype(jnp.int32), labels,
                             num_segments=num_classes)
  present = counts > 0
  per_class = jnp.where(present, hits / jnp.where(present, counts, 1), jnp.nan)
  accuracy = jnp.where(present, per_class, 0.0).sum() / present.sum()
  return PointingAccuracy(accuracy=accuracy.astype(jnp.float32),
                          class_accuracy=per_class.astype(jnp.float32), class_count=counts)
