"""Tests of salijax.methods.rise and its masks."""

import functools

import float_tolerance
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tiny_classifiers
from random_inputs import random_images
from skimage import transform

from salijax.classifier import Classifier
from salijax.methods.rise import draw_grid, grid_mask, rise, rise_mask


def test_grid_cells_are_on_with_probability_exactly_p_and_offsets_are_uniform():
  keys = jax.random.split(jax.random.key(0), 4000)
  grids, offsets = jax.vmap(lambda k: draw_grid(k, 40, 64, 5, 0.1))(keys)
  assert grids.shape == (4000, 5, 5) and offsets.shape == (4000, 2)
  assert set(np.unique(grids)) == {0.0, 1.0}
  # 100000 cells: the standard error of the mean is 0.001 (`randn < p` would give 0.54).
  assert abs(float(grids.mean()) - 0.1) < 0.004
  # Cell sizes C_H = ceil(40 / 5) = 8, C_W = ceil(64 / 5) = 13.
  for axis, cell_px in ((0, 8), (1, 13)):
    counts = np.bincount(np.asarray(offsets[:, axis]), minlength=cell_px)
    assert len(counts) == cell_px  # every offset in [0, cell_px), none beyond
    # Binomial frequencies: standard deviation sqrt(p (1 - p) / 4000) <= 0.0043.
    np.testing.assert_allclose(counts / 4000, 1 / cell_px, atol=0.025)


def mask_atol(cell: int) -> float:
  """Bound on the float32 error of a mask (values in [0, 1]) upsampled from a cell x cell grid:
  per axis, the sampling positions (up to the grid's size) round, the two tap weights and
  their normalisation round, and so does the sum of the two taps."""
  return float_tolerance.sum_atol(1.0, 8 * cell + 16)


@pytest.mark.parametrize("height,width,cell", [(40, 52, 5), (32, 32, 7), (24, 24, 1)])
def test_mask_is_the_crop_of_the_upsampled_grid(height, width, cell):
  """docs/methods.md#rise literally: resize the grid to ((s+1) C_H, (s+1) C_W), crop H x W at
  the offset."""
  cell_h, cell_w = -(-height // cell), -(-width // cell)
  draws = [draw_grid(jax.random.fold_in(jax.random.key(1), i), height, width, cell, 0.5)
           for i in range(4)]
  # The largest offsets crop the bottom-right corner of the upsampled grid.
  draws.append((draws[0][0], jnp.array([cell_h - 1, cell_w - 1])))
  for grid, offset in draws:
    big = transform.resize(np.asarray(grid, np.float64), ((cell + 1) * cell_h, (cell + 1) * cell_w),
                           order=1, mode="edge", anti_aliasing=False)
    dy, dx = (int(o) for o in offset)
    expected = big[dy:dy + height, dx:dx + width]
    np.testing.assert_allclose(grid_mask(grid, offset, height, width), expected, rtol=0,
                               atol=mask_atol(cell))


def test_rise_mask_is_the_grid_mask_of_its_draw():
  for i in range(3):
    key = jax.random.fold_in(jax.random.key(2), i)
    mask = rise_mask(key, 40, 52, 5, 0.5)
    np.testing.assert_array_equal(mask, grid_mask(*draw_grid(key, 40, 52, 5, 0.5), 40, 52))
    assert mask.shape == (40, 52) and 0.0 <= float(mask.min()) <= float(mask.max()) <= 1.0
  # All cells on: each output is 1 times two tap weights normalised to sum 1, per axis.
  np.testing.assert_allclose(rise_mask(jax.random.key(0), 40, 52, 5, 1.0), 1.0,
                             rtol=float_tolerance.sum_rtol(6), atol=0)


def reference_rise(clf, images, labels, key, num_masks, cell, p, fill):
  """docs/methods.md#rise literally: one mask, one image, one forward at a time.

  Returns the maps and a bound on their float32 rounding error (random_cnn).
  """
  apply = jax.jit(clf.apply)
  terms = jax.jit(functools.partial(tiny_classifiers.logit_terms, clf))
  images = np.asarray(images, np.float64)
  batch, height, width, _ = images.shape
  n = tiny_classifiers.random_cnn_terms(height // 4, width // 4) + 8  # + masking
  total, error = np.zeros((batch, height, width)), np.zeros((batch, height, width))
  for i in range(num_masks):
    mask = np.asarray(rise_mask(jax.random.fold_in(key, i), height, width, cell, p), np.float64)
    for b in range(batch):
      masked = jnp.asarray((images[b] * mask[..., None] + fill * (1 - mask[..., None]))[None],
                           jnp.float32)
      logits = np.asarray(apply(clf.variables, masked)[0], np.float64)
      probs = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
      total[b] += probs[labels[b]] * mask
      # Logits within dz of exact make the probability within p (2 dz + ...); masks round too.
      dz = float_tolerance.sum_atol(terms(masked), n)
      prob_atol = probs[labels[b]] * (2 * dz + (len(logits) + 3) * float_tolerance.EPS)
      error[b] += prob_atol * mask + probs[labels[b]] * mask_atol(cell)
  # The maps sum num_masks terms >= 0.
  atol = (error.max() + float_tolerance.sum_atol(total, num_masks + 2)) / (num_masks * p)
  return total / (num_masks * p), atol


@pytest.mark.parametrize("fill", [0.0, 0.3])
def test_matches_slow_reference(fill):
  clf = tiny_classifiers.random_cnn(jax.random.key(0), num_classes=4)
  images = random_images(1, (2, 32, 32, 3))
  labels = jnp.array([2, 0])
  key = jax.random.key(3)
  got = rise(clf, images, labels, key=key, num_masks=37, cell=5, p=0.3, chunk=8, fill=fill)
  assert got.shape == (2, 32, 32) and got.dtype == jnp.float32
  expected, atol = reference_rise(clf, images, np.asarray(labels), key, 37, 5, 0.3, fill)
  np.testing.assert_allclose(got, expected, rtol=0, atol=atol)


def test_constant_classifier_gets_its_probability_everywhere():
  """f_c constant = q: L = q sum_i M_i / (N p), whose expectation is q at every pixel."""
  logits = jnp.array([0.3, -1.0, 1.2])
  clf = Classifier(variables={"logits": logits},
                   apply=lambda v, x: jnp.broadcast_to(v["logits"], (x.shape[0], 3)))
  maps = rise(clf, random_images(0, (3, 24, 24, 3)), jnp.array([0, 1, 2]),
              key=jax.random.key(0), num_masks=3000, cell=6, p=0.25, chunk=500)
  # Per pixel, sum_i M_i / (N p) has a standard deviation < sqrt(p / N) / p = 0.037.
  np.testing.assert_allclose(maps.mean(axis=(1, 2)), jax.nn.softmax(logits), rtol=0.03)
  np.testing.assert_allclose(maps / jax.nn.softmax(logits)[:, None, None], 1.0, atol=0.2)


@pytest.mark.parametrize("channel,brightness", [(None, (0.15, 0.35)), (1, (0.4, 0.8))])
def test_known_answer_on_region_classifier(channel, brightness):
  """Class 0 rises with the region's brightness, class 1 falls.

  RISE's map is E[f_c M] / p: about E[f_c] far from the region (masks there
  are independent of the region's pixels), higher in the region for class 0,
  lower for class 1. Masks are correlated over one grid cell (C = 7 px), so
  the deviation spills over the region's border by up to C pixels. Asserted,
  for N = 4000: the in-region mean exceeds the out-of-region mean by > 0.005
  (class 0; observed 0.012-0.025 over seeds) and falls below it by > 0.005
  (class 1); > 80 % of the map's deviation from the far-field mean in that
  direction lies in the region dilated by C (63 % of the image; observed
  85-96 %).
  """
  size, region, cell_px = 48, (8, 32, 16, 40), 7
  clf = tiny_classifiers.region_classifier(size, size, region, channel=channel, num_classes=2)
  image = random_images(1, (1, size, size, 3), *brightness)
  maps = np.asarray(rise(clf, jnp.concatenate([image, image]), jnp.array([0, 1]),
                         key=jax.random.key(0), num_masks=4000, cell=7, p=0.5, chunk=500))
  inside = np.zeros((size, size), bool)
  inside[region[0]:region[1], region[2]:region[3]] = True
  near = np.zeros((size, size), bool)
  near[region[0] - cell_px:region[1] + cell_px, region[2] - cell_px:region[3] + cell_px] = True
  for saliency, sign in ((maps[0], 1.0), (maps[1], -1.0)):
    assert sign * (saliency[inside].mean() - saliency[~inside].mean()) > 0.005
    deviation = np.maximum(sign * (saliency - saliency[~near].mean()), 0.0)
    assert deviation[near].sum() > 0.8 * deviation.sum()


def test_chunk_size_batch_composition_jit_and_no_recompilation():
  clf = tiny_classifiers.random_cnn(jax.random.key(0))
  images = random_images(2, (3, 32, 32, 3))
  labels = jnp.array([1, 3, 0])
  key = jax.random.key(7)
  settings = {"num_masks": 50, "cell": 4, "p": 0.5}
  by_chunk = [rise(clf, images, labels, key=key, chunk=chunk, **settings)
              for chunk in (1, 7, 64)]  # 64 > 50: one step, no padding
  # Other programs, each within the reference's bound of the exact maps.
  tol = {"rtol": 0, "atol": 2 * reference_rise(clf, images, np.asarray(labels), key, 50, 4,
                                                0.5, 0.0)[1]}
  for other in by_chunk[1:]:
    np.testing.assert_allclose(other, by_chunk[0], **tol)
  alone = rise(clf, images[2:], labels[2:], key=key, chunk=7, **settings)
  np.testing.assert_allclose(alone[0], by_chunk[1][2], **tol)
  inside_jit = jax.jit(lambda x, y, k: rise(clf, x, y, key=k, chunk=7, **settings))(
      images, labels, key)
  np.testing.assert_allclose(inside_jit, by_chunk[1], **tol)
