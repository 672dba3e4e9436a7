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
     scikit-image finds in flat regions); ties go to the lowest k. Then move
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


def _assign(colours: jax.Array, centres: jax.Array, alive: jax.Array, previous: jax.Array,
            grid: SlicGrid) -> jax.Array:
  """Nearest live centre of every pixel: f32[H,W,3], f32[K,5], bool[K], i32[H,W] -> i32[H,W].

  `centres` rows are (y, x, colour); a pixel with no candidate keeps `previous`.
  """
  height, width, _ = colours.shape
  ys = jnp.arange(height, dtype=jnp.float32)[:, None]
  xs = jnp.arange(width, dtype=jnp.float32)[None, :]
  cell_y = jnp.clip(jnp.floor((ys - grid.start_y) / grid.step_y + 0.5), 0, grid.count_y - 1)
  cell_x = jnp.clip(jnp.floor((xs - grid.start_x) / grid.step_x + 0.5), 0, grid.count_x - 1)
  offsets = jnp.arange(-_SEARCH_RADIUS, _SEARCH_RADIUS + 1)
  gx = (cell_x + offsets[:, None, None]).astype(jnp.int32)  # i32[2r+1,1,W]: a row of cells

  def try_row(state, dy):
    """The 2r + 1 candidates of grid row (own row + dy) at once; rows in increasing k."""
    best, nearest = state
    gy = (cell_y + dy).astype(jnp.int32)
    on_grid = (gy >= 0) & (gy < grid.count_y) & (gx >= 0) & (gx < grid.count_x)
    k = jnp.clip(gy, 0, grid.count_y - 1) * grid.count_x + jnp.clip(gx, 0, grid.count_x - 1)
    centre = centres[k]  # f32[2r+1,H,W,5]
    cy, cx = centre[..., 0], centre[..., 1]
    in_window = ((ys > cy - 2 * grid.window_y - 1) & (ys <= cy + 2 * grid.window_y)
                 & (xs > cx - 2 * grid.window_x - 1) & (xs <= cx + 2 * grid.window_x))
    spatial = ((cy - ys) ** 2 + (cx - xs) ** 2) / grid.spacing ** 2
    distance = spatial + jnp.sum((colours - centre[..., 2:]) ** 2, axis=-1)
    distance = jnp.where(on_grid & in_window & alive[k], distance, jnp.inf)
    column = jnp.argmin(distance, axis=0)  # the first minimum: ties go to the lowest k
    row_best = jnp.take_along_axis(distance, column[None], axis=0)[0]
    row_nearest = jnp.take_along_axis(k, column[None], axis=0)[0]
    better = row_best < best  # strict: ties go to the earlier row, the lower k
    return (jnp.where(better, row_best, best), jnp.where(better, row_nearest, nearest)), None

  start = (jnp.full((height, width), jnp.inf, jnp.float32), previous)
  (_, nearest), _ = jax.lax.scan(try_row, start, offsets)
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

  def one_iteration(_, state):
    centres, alive, labels = state
    labels = _assign(colours, centres, alive, labels, grid)
    return _update(colours, labels, grid.size) + (labels,)

  start = (centres, jnp.ones(grid.size, bool), jnp.zeros((height, width), jnp.int32))
  _, _, labels = jax.lax.fori_loop(0, iterations, one_iteration, start)
  min_size = int(0.5 * height * width / grid.size)
  return merge_small_fragments(labels, min_size)
