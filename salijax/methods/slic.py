"""SLIC superpixels (Achanta et al., TPAMI 2012) in JAX, following scikit-image.

`slic(image f32[H,W,3]) -> i32[H,W]`, labels in [0, K) with K = `slic_grid(...).size`
(static), is a pure function of the image: `jax.jit` and `jax.vmap` it freely.
Steps, as `skimage.segmentation.slic` (0.26) takes them:

  1. rescale the image to [0, 1] by its own min and max; sRGB -> CIE Lab (D65);
  2. Gaussian smoothing of the Lab image (std `sigma` px, mirrored borders);
  3. centres on scikit-image's regular grid (`skimage.util.regular_grid`, step
     S ~ sqrt(HW / num_segments)), K = ny * nx of them, colour 0 (so the first
     assignment is purely spatial); no moving of the centres to low gradients
     (scikit-image has none either);
  4. `iterations` times: assign every pixel p to the centre k minimising
        D = |lab_p - lab_k|^2 / m^2 + |xy_p - xy_k|^2 / S^2      (m = compactness)
     among the centres whose window (+-2 grid steps around the centre, as
     scikit-image) holds the pixel; the candidates are the centres of the 7 x 7
     grid cells around the pixel's own (centres drift: 5 x 5 misses some that
     scikit-image finds in flat regions; all pixels of a grid cell share
     them, so the search runs cell by cell); ties go to the lowest k. Then move
     every centre to the mean position and colour of its pixels
     (`jax.ops.segment_sum`); a centre left with no pixel is dropped, as in
     scikit-image;
  5. fragments smaller than half a grid cell are merged into a neighbouring
     segment (`slic_connectivity`; unlike scikit-image, large disconnected
     parts of one cluster keep one label, so labels stay in [0, K)).

Segments can end up empty (a dropped centre, a merged cluster): callers must
treat labels in [0, K) that no pixel holds as absent.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from skimage.util import regular_grid

from salijax.gaussian_blur import gaussian_smooth
from salijax.methods.slic_connectivity import merge_small_fragments

_XYZ_FROM_RGB = np.array([[0.412453, 0.357580, 0.180423],
                          [0.212671, 0.715160, 0.072169],
                          [0.019334, 0.119193, 0.950227]], np.float32)
_D65_WHITE = np.array([0.95047, 1.0, 1.08883], np.float32)
_SEARCH_RADIUS = 3  # candidate centres: the (2r + 1)^2 grid cells around a pixel's own


class SlicGrid(NamedTuple):
  """The initial grid of centres (static): rows y = start_y + i step_y, i < count_y, etc."""

  start_y: int
  start_x: int
  step_y: int
  step_x: int
  count_y: int
  count_x: int
  window_y: int  # half-window of the assignment search is 2 * window_y rows
  window_x: int
  spacing: float  # S in the distance

  @property
  def size(self) -> int:
    """K, the number of centres and of possible labels."""
    return self.count_y * self.count_x


def slic_grid(height: int, width: int, num_segments: int) -> SlicGrid:
  """scikit-image's grid of ~num_segments centres for an H x W image."""
  def starts_steps(count):
    return [(int(s.start or 0), int(s.step or 1))
            for s in regular_grid((1, height, width), count)]

  (_, step_z), (start_y, step_y), (start_x, step_x) = starts_steps(num_segments)
  count_y = len(range(start_y, height, step_y))
  count_x = len(range(start_x, width, step_x))
  _, (_, window_y), (_, window_x) = starts_steps(count_y * count_x)
  return SlicGrid(start_y, start_x, step_y, step_x, count_y, count_x, window_y, window_x,
                  float(max(step_z, step_y, step_x)))


def rgb_to_lab(rgb: jax.Array) -> jax.Array:
  """f32[..., 3] sRGB in [0, 1] -> f32[..., 3] CIE L*a*b* (D65, 2 degree observer)."""
  linear = jnp.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
  xyz = jnp.einsum("...c,dc->...d", linear, _XYZ_FROM_RGB,
                   precision=jax.lax.Precision.HIGHEST) / _D65_WHITE
  f = jnp.where(xyz > 0.008856, jnp.cbrt(xyz), 7.787 * xyz + 16.0 / 116.0)
  fx, fy, fz = f[..., 0], f[..., 1], f[..., 2]
  return jnp.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], axis=-1)


class _CellLayout(NamedTuple):
  """The pixels of one image axis grouped by the grid cell they fall in (static)."""

  index: np.ndarray  # i64[count, size]: each cell's positions, padded with the axis length
  cell: np.ndarray  # i64[length]: the cell of each position
  slot: np.ndarray  # i64[length]: its place within its cell


def _cell_layout(length: int, start: int, step: int, count: int) -> _CellLayout:
  """Position p lies in cell clip(floor((p - start) / step + 1/2), 0, count - 1)."""
  position = np.arange(length)
  cell = np.clip(np.floor((position - start) / step + 0.5), 0, count - 1).astype(np.int64)
  members = [np.flatnonzero(cell == c) for c in range(count)]
  index = np.full((count, max(len(m) for m in members)), length, np.int64)
  slot = np.zeros(length, np.int64)
  for c, m in enumerate(members):
    index[c, :len(m)] = m
    slot[m] = np.arange(len(m))
  return _CellLayout(index, cell, slot)


def _to_blocks(values: jax.Array, rows: _CellLayout, columns: _CellLayout) -> jax.Array:
  """[H,W,...] -> [cy,by,cx,bx,...]: pixel (y, x) at (cell, slot) of y and of x; the padding
  slots hold zeros."""
  padded = jnp.pad(values, [(0, 1), (0, 1)] + [(0, 0)] * (values.ndim - 2))
  return padded[rows.index[:, :, None, None], columns.index[None, None]]


def _to_pixels(blocks: jax.Array, rows: _CellLayout, columns: _CellLayout) -> jax.Array:
  """[cy,by,cx,bx] -> [H,W], the inverse of `_to_blocks`."""
  return blocks[rows.cell[:, None], rows.slot[:, None], columns.cell[None], columns.slot[None]]


def _assign(colours: jax.Array, centres: jax.Array, alive: jax.Array, previous: jax.Array,
            grid: SlicGrid, rows: _CellLayout, columns: _CellLayout) -> jax.Array:
  """Nearest live centre of every pixel, in the cell layout (`_to_blocks`):
  f32[3,cy,by,cx,bx] colours, f32[K,5] centres, bool[K], i32[cy,by,cx,bx] -> i32[cy,by,cx,bx].

  `centres` rows are (y, x, colour); a pixel with no candidate keeps `previous`.
  All pixels of a grid cell have the same candidates, so each candidate is one
  centre per cell, broadcast over the cell's pixels (no gather), and the
  (2r + 1)^2 candidates are visited in increasing k with a strict comparison:
  ties go to the lowest k. The squared colour distance is summed channel by
  channel: XLA:CPU runs a reduction over a trailing axis of 3 several times
  slower inside this loop fusion.
  """
  count_y, count_x = grid.count_y, grid.count_x
  ys = jnp.asarray(rows.index, jnp.float32)[:, :, None, None]  # f32[cy,by,1,1]
  xs = jnp.asarray(columns.index, jnp.float32)[None, None]  # f32[1,1,cx,bx]
  r = _SEARCH_RADIUS
  # Centres and liveness on the grid, edge-padded by r cells: the cells' candidates are slices.
  padded = jnp.pad(centres.reshape(count_y, count_x, 5), ((r, r), (r, r), (0, 0)), mode="edge")
  padded_alive = jnp.pad(alive.reshape(count_y, count_x), r, mode="edge")
  cell_y, cell_x = np.arange(count_y)[:, None], np.arange(count_x)[None, :]
  best = jnp.full(previous.shape, jnp.inf, jnp.float32)
  nearest = previous
  for dy in range(-r, r + 1):
    for dx in range(-r, r + 1):
      gy, gx = cell_y + dy, cell_x + dx
      on_grid = (gy >= 0) & (gy < count_y) & (gx >= 0) & (gx < count_x)
      k = np.clip(gy, 0, count_y - 1) * count_x + np.clip(gx, 0, count_x - 1)
      window = (slice(r + dy, r + dy + count_y), slice(r + dx, r + dx + count_x))
      centre = padded[window][:, None, :, None]  # f32[cy,1,cx,1,5]: one centre per cell
      live = (on_grid & padded_alive[window])[:, None, :, None]
      cy, cx = centre[..., 0], centre[..., 1]
      in_window = ((ys > cy - 2 * grid.window_y - 1) & (ys <= cy + 2 * grid.window_y)
                   & (xs > cx - 2 * grid.window_x - 1) & (xs <= cx + 2 * grid.window_x))
      spatial = ((cy - ys) ** 2 + (cx - xs) ** 2) / grid.spacing ** 2
      colour = ((colours[0] - centre[..., 2]) ** 2 + (colours[1] - centre[..., 3]) ** 2
                + (colours[2] - centre[..., 4]) ** 2)
      distance = jnp.where(live & in_window, spatial + colour, jnp.inf)
      better = distance < best
      best = jnp.where(better, distance, best)
      nearest = jnp.where(better, jnp.asarray(k[:, None, :, None], jnp.int32), nearest)
  return nearest


def _update(colours: jax.Array, labels: jax.Array, size: int) -> tuple[jax.Array, jax.Array]:
  """Centres f32[K,5] (mean y, x, colour of their pixels) and which are non-empty bool[K]."""
  height, width, _ = colours.shape
  ys, xs = jnp.meshgrid(jnp.arange(height, dtype=jnp.float32),
                        jnp.arange(width, dtype=jnp.float32), indexing="ij")
  data = jnp.concatenate([ys[..., None], xs[..., None], colours], axis=-1).reshape(-1, 5)
  flat = labels.reshape(-1)
  sums = jax.ops.segment_sum(data, flat, size)
  counts = jax.ops.segment_sum(jnp.ones_like(flat, jnp.float32), flat, size)
  return sums / jnp.maximum(counts, 1.0)[:, None], counts > 0


def slic(image: jax.Array, *, num_segments: int = 50, compactness: float = 10.0,
         sigma: float = 1.0, iterations: int = 10) -> jax.Array:
  """SLIC labels of one image (see the module doc).

  Args:
    image: f32[H,W,3] RGB (any range: it is rescaled to [0, 1] first).
    num_segments: the approximate number of segments; K = `slic_grid(H, W,
      num_segments).size` is the label range.
    compactness: m, the weight of space against colour (larger: squarer segments).
    sigma: std in pixels of the Gaussian smoothing of the Lab image; 0 for none.
    iterations: the fixed number of assignment rounds.

  Returns:
    i32[H,W], labels in [0, K); some labels may hold no pixel.
  """
  height, width, _ = image.shape
  grid = slic_grid(height, width, num_segments)
  image = jnp.asarray(image, jnp.float32)
  low, high = image.min(), image.max()
  image = (image - low) / jnp.where(high > low, high - low, 1.0)
  colours = gaussian_smooth(rgb_to_lab(image), sigma) / compactness

  centre_y, centre_x = np.meshgrid(grid.start_y + grid.step_y * np.arange(grid.count_y),
                                   grid.start_x + grid.step_x * np.arange(grid.count_x),
                                   indexing="ij")
  centres = np.zeros((grid.size, 5), np.float32)
  centres[:, 0], centres[:, 1] = centre_y.reshape(-1), centre_x.reshape(-1)
  centres = jnp.asarray(centres)

  rows = _cell_layout(height, grid.start_y, grid.step_y, grid.count_y)
  columns = _cell_layout(width, grid.start_x, grid.step_x, grid.count_x)
  colour_blocks = jnp.moveaxis(_to_blocks(colours, rows, columns), -1, 0)  # f32[3,cy,by,cx,bx]

  def one_iteration(_, state):  # the labels stay in the cell layout from one to the next
    centres, alive, nearest = state
    nearest = _assign(colour_blocks, centres, alive, nearest, grid, rows, columns)
    return _update(colours, _to_pixels(nearest, rows, columns), grid.size) + (nearest,)

  start = (centres, jnp.ones(grid.size, bool), jnp.zeros(colour_blocks.shape[1:], jnp.int32))
  _, _, nearest = jax.lax.fori_loop(0, iterations, one_iteration, start)
  min_size = int(0.5 * height * width / grid.size)
  return merge_small_fragments(_to_pixels(nearest, rows, columns), min_size)
