"""Tests of the JAX SLIC (salijax.methods.slic) against scikit-image's.

Agreement measure: the adjusted Rand index (ARI, Hubert & Arabie 1985) between
our labels and `skimage.segmentation.slic(..., start_label=0)` with the same
parameters; 1 = the same partition, ~0 = chance. Measured (jax 0.10.2, CPU,
128 x 128, 50 segments): 0.995 on both synthetic images; 0.997 (astronaut),
0.994 (coffee), 0.976 (chelsea). Most of the difference comes from the
connectivity clean-up (slic_connectivity's docstring lists how it differs from
scikit-image's). Thresholds: 0.98 (synthetic), 0.95 (photographs).
"""

import functools

import float_tolerance
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import skimage
from skimage import color, segmentation, transform

from salijax.methods import slic as slic_module
from salijax.methods.slic import rgb_to_lab, slic, slic_grid

SIZE = 128


def adjusted_rand_index(a: np.ndarray, b: np.ndarray) -> float:
  """ARI of two labellings of the same pixels, from their contingency table."""
  _, a = np.unique(a.ravel(), return_inverse=True)
  _, b = np.unique(b.ravel(), return_inverse=True)
  table = np.zeros((a.max() + 1, b.max() + 1))
  np.add.at(table, (a, b), 1)
  pairs = lambda n: (n * (n - 1) / 2).sum()  # noqa: E731
  both, rows, cols, total = pairs(table), pairs(table.sum(1)), pairs(table.sum(0)), pairs(
      np.array([a.size]))
  expected = rows * cols / total
  return float((both - expected) / ((rows + cols) / 2 - expected))


def synthetic_shapes(seed: int) -> np.ndarray:
  """f32[SIZE,SIZE,3]: a disc, a rectangle and a triangle on a background, light noise."""
  rng = np.random.default_rng(seed)
  y, x = np.mgrid[:SIZE, :SIZE]
  image = np.empty((SIZE, SIZE, 3), np.float32)
  image[:] = (0.85, 0.8, 0.6)
  image[(y - 40) ** 2 + (x - 45) ** 2 < 28 ** 2] = (0.8, 0.1, 0.1)
  image[70:115, 60:120] = (0.1, 0.2, 0.75)
  image[(y > 10) & (y < 60) & (x > 75) & (x - 75 < (y - 10))] = (0.1, 0.6, 0.2)
  return np.clip(image + rng.normal(0, 0.02, image.shape), 0, 1).astype(np.float32)


def photograph(name: str) -> np.ndarray:
  """skimage.data's photograph `name`, resized to SIZE x SIZE, f32 in [0, 1]."""
  image = getattr(skimage.data, name)()
  return transform.resize(image, (SIZE, SIZE), anti_aliasing=True).astype(np.float32)


@functools.cache
def _jitted_slic(**kwargs):
  return jax.jit(functools.partial(slic, **kwargs))


def _compare(image, **kwargs):
  ours = np.asarray(_jitted_slic(**kwargs)(jnp.asarray(image)))
  theirs = segmentation.slic(image, n_segments=kwargs["num_segments"],
                             compactness=kwargs["compactness"], sigma=kwargs["sigma"],
                             start_label=0)
  return ours, theirs


@pytest.mark.parametrize("seed", [0, 1])
def test_agrees_with_skimage_on_synthetic_shapes(seed):
  ours, theirs = _compare(synthetic_shapes(seed), num_segments=50, compactness=10.0, sigma=1.0)
  assert adjusted_rand_index(ours, theirs) > 0.98


@pytest.mark.parametrize("name", ["astronaut", "coffee", "chelsea"])
def test_agrees_with_skimage_on_photographs(name):
  ours, theirs = _compare(photograph(name), num_segments=50, compactness=10.0, sigma=1.0)
  assert adjusted_rand_index(ours, theirs) > 0.95


def test_agrees_with_skimage_with_other_parameters():
  ours, theirs = _compare(photograph("coffee"), num_segments=30, compactness=20.0, sigma=0.0)
  assert adjusted_rand_index(ours, theirs) > 0.95


def test_labels_lie_in_the_grid_range_and_segments_are_sizeable():
  labels = np.asarray(_jitted_slic(num_segments=50, compactness=10.0, sigma=1.0)(
      jnp.asarray(photograph("astronaut"))))
  size = slic_grid(SIZE, SIZE, 50).size
  assert labels.dtype == np.int32 and labels.min() >= 0 and labels.max() < size
  assert 0.5 * size <= len(np.unique(labels)) <= size


def test_grid_is_skimages():
  grid = slic_grid(SIZE, SIZE, 50)
  first = skimage.util.regular_grid((SIZE, SIZE), 50)
  assert (grid.start_y, grid.step_y, grid.start_x, grid.step_x) == (
      first[0].start, first[0].step, first[1].start, first[1].step)
  assert grid.size == len(range(first[0].start, SIZE, first[0].step)) ** 2


def test_rgb_to_lab_equals_skimage():
  rgb = np.random.default_rng(0).uniform(size=(500, 3)).astype(np.float32)
  rgb[:3] = [[0, 0, 0], [1, 1, 1], [0.01, 0.02, 0.03]]  # black, white, the linear branch
  # Both in float32 (skimage keeps the dtype): f(X), f(Y), f(Z) <= 1.1 after ~20 roundings
  # each (gamma, 3 x 3 matrix, cube root), and a = 500 (f(X) - f(Y)) scales two of them.
  np.testing.assert_allclose(rgb_to_lab(jnp.asarray(rgb)), color.rgb2lab(rgb), rtol=0,
                             atol=2 * float_tolerance.sum_atol(500 * 2 * 1.1, 20))


def test_jit_and_vmap_over_a_batch_equal_per_image_results():
  images = np.stack([synthetic_shapes(2)[:48, :64], photograph("chelsea")[40:88, 30:94]])
  run = functools.partial(slic, num_segments=20, compactness=10.0, sigma=1.0)
  batched = np.asarray(jax.jit(jax.vmap(run))(jnp.asarray(images)))
  for image, labels in zip(images, batched, strict=True):
    np.testing.assert_array_equal(labels, np.asarray(jax.jit(run)(jnp.asarray(image))))


def candidate_distances(colours, centres, alive, grid):
  """The slow reference of one assignment: f64[H,W,K] distance of every pixel to every centre,
  inf where the centre is not a candidate (dead, outside the (2r+1)^2 grid cells around the
  pixel's cell, or its window does not hold the pixel)."""
  height, width, _ = colours.shape
  radius = slic_module._SEARCH_RADIUS
  cell = lambda p, start, step, count: np.clip(  # noqa: E731
      np.floor((p - start) / step + 0.5), 0, count - 1)
  out = np.full((height, width, grid.size), np.inf)
  for y in range(height):
    for x in range(width):
      cell_y = cell(y, grid.start_y, grid.step_y, grid.count_y)
      cell_x = cell(x, grid.start_x, grid.step_x, grid.count_x)
      for k in range(grid.size):
        row, column = divmod(k, grid.count_x)
        cy, cx = centres[k, :2]
        near = abs(row - cell_y) <= radius and abs(column - cell_x) <= radius
        in_window = (cy - 2 * grid.window_y - 1 < y <= cy + 2 * grid.window_y
                     and cx - 2 * grid.window_x - 1 < x <= cx + 2 * grid.window_x)
        if alive[k] and near and in_window:
          spatial = ((cy - y) ** 2 + (cx - x) ** 2) / grid.spacing ** 2
          out[y, x, k] = spatial + np.sum((colours[y, x] - centres[k, 2:]) ** 2)
  return out


@pytest.mark.parametrize(("height", "width", "num_segments"), [(30, 41, 12), (64, 48, 50)])
def test_one_assignment_equals_the_per_pixel_reference(height, width, num_segments):
  """The nearest candidate of every pixel, found cell by cell, is the per-pixel minimum (to
  float32 rounding of the distances); pixels without a candidate keep their label."""
  rng = np.random.default_rng(height)
  grid = slic_grid(height, width, num_segments)
  centre_y, centre_x = np.meshgrid(grid.start_y + grid.step_y * np.arange(grid.count_y),
                                   grid.start_x + grid.step_x * np.arange(grid.count_x),
                                   indexing="ij")
  drift = rng.uniform(-1.5, 1.5, (grid.size, 2)) * (grid.step_y, grid.step_x)
  centres = np.concatenate([np.stack([centre_y.ravel(), centre_x.ravel()], 1) + drift,
                            rng.uniform(-5, 10, (grid.size, 3))], 1).astype(np.float32)
  centres[:, 0] = np.maximum(centres[:, 0], 2 * grid.window_y + 4)  # rows 0-2: no candidate
  alive = rng.uniform(size=grid.size) > 0.3
  colours = rng.uniform(-5, 10, (height, width, 3)).astype(np.float32)
  previous = rng.integers(0, grid.size, (height, width)).astype(np.int32)
  rows = slic_module._cell_layout(height, grid.start_y, grid.step_y, grid.count_y)
  columns = slic_module._cell_layout(width, grid.start_x, grid.step_x, grid.count_x)
  colour_blocks = jnp.moveaxis(slic_module._to_blocks(jnp.asarray(colours), rows, columns), -1, 0)
  np.testing.assert_array_equal(
      slic_module._to_pixels(slic_module._to_blocks(jnp.asarray(previous), rows, columns),
                             rows, columns), previous)
  got = np.asarray(slic_module._to_pixels(slic_module._assign(
      colour_blocks, jnp.asarray(centres), jnp.asarray(alive),
      slic_module._to_blocks(jnp.asarray(previous), rows, columns), grid, rows, columns),
      rows, columns))
  distances = candidate_distances(colours.astype(np.float64), centres.astype(np.float64), alive,
                                  grid)
  best = distances.min(axis=-1)
  none = np.isinf(best)
  assert none.any() and not none.all()  # both kinds of pixel occur
  np.testing.assert_array_equal(got[none], previous[none])
  chosen = np.take_along_axis(distances, got[..., None], axis=-1)[..., 0]
  # Each distance: 5 squares and sums of terms up to ~|best|, a few roundings each.
  slack = float_tolerance.sum_rtol(8) * np.abs(best[~none])
  assert np.all(chosen[~none] <= best[~none] + slack)
  runner_up = np.sort(distances, axis=-1)[..., 1]
  clear = ~none & (runner_up - best > 2 * float_tolerance.sum_rtol(8) * np.abs(best))
  np.testing.assert_array_equal(got[clear], distances.argmin(axis=-1)[clear])
