"""Tests of salijax.metrics.pointing_game."""

import math

import float_tolerance
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from salijax.metrics.pointing_game import (
    EnergyPointingGame,
    PointingGame,
    boxes_to_masks,
    energy_pointing_game,
    pointing_accuracy,
    pointing_game,
)


def reference_pointing_game(maps, masks, tolerance):
  """Zhang et al. literally: every maximal pixel against every region pixel, in float64."""
  hits, distances, maxima = [], [], []
  for saliency, mask in zip(np.asarray(maps, np.float64), np.asarray(masks), strict=True):
    peak = saliency.max()
    best = math.inf
    count = 0
    for r in range(saliency.shape[0]):
      for c in range(saliency.shape[1]):
        if saliency[r, c] != peak:
          continue
        count += 1
        for rr, cc in zip(*np.nonzero(mask), strict=True):
          best = min(best, math.hypot(r - rr, c - cc))
    hits.append(best <= tolerance)
    distances.append(best)
    maxima.append(count)
  return np.array(hits), np.array(distances), np.array(maxima)


def reference_box_mask(box, height, width):
  """A pixel is in the box when its centre, in normalised coordinates, is."""
  ymin, xmin, ymax, xmax = np.asarray(box, np.float64)
  mask = np.zeros((height, width), bool)
  for r in range(height):
    for c in range(width):
      mask[r, c] = (ymin <= (r + 0.5) / height <= ymax) and (xmin <= (c + 0.5) / width <= xmax)
  return mask


def reference_energy(maps, masks):
  """Sum of the min-max normalised map inside the region over its total, pixel by pixel."""
  proportions = []
  for saliency, mask in zip(np.asarray(maps, np.float64), np.asarray(masks), strict=True):
    low, high = saliency.min(), saliency.max()
    inside = total = 0.0
    for r in range(saliency.shape[0]):
      for c in range(saliency.shape[1]):
        value = (saliency[r, c] - low) / (high - low) if high > low else 1.0
        total += value
        inside += value if mask[r, c] else 0.0
    proportions.append(inside / total)
  return np.array(proportions)


def random_regions(seed, shape):
  """bool[B,H,W] blobs: a random rectangle per image plus a few scattered pixels."""
  rng = np.random.default_rng(seed)
  masks = np.zeros(shape, bool)
  for mask in masks:
    top, left = rng.integers(0, shape[1]), rng.integers(0, shape[2])
    mask[top:top + rng.integers(1, 4), left:left + rng.integers(1, 5)] = True
    mask[rng.integers(0, shape[1], 2), rng.integers(0, shape[2], 2)] = True
  return masks


def tied_maps(seed, shape):
  """f32 maps with few distinct values, so several pixels often share the maximum."""
  return np.random.default_rng(seed).integers(0, 6, shape).astype(np.float32)


@pytest.mark.parametrize("tolerance", [0.0, 2.5, 5.0, 15.0])
def test_matches_the_pixel_loop_reference(tolerance):
  maps = tied_maps(0, (6, 11, 17))
  maps[1] = np.random.default_rng(1).normal(size=(11, 17))  # a single maximum
  masks = random_regions(2, (6, 11, 17))
  got = pointing_game(jnp.asarray(maps), jnp.asarray(masks), tolerance=tolerance)
  hits, distances, maxima = reference_pointing_game(maps, masks, tolerance)
  np.testing.assert_array_equal(got.hit, hits)
  # Square roots of exact integers, correctly rounded once.
  np.testing.assert_allclose(got.distance, distances, rtol=float_tolerance.EPS, atol=0)
  np.testing.assert_array_equal(got.num_maxima, maxima)
  assert got.hit.dtype == jnp.bool_ and got.distance.dtype == jnp.float32


def test_boxes_match_the_pixel_centre_rule_and_the_same_masks():
  rng = np.random.default_rng(3)
  corners = rng.uniform(0, 1, (5, 2, 2))
  boxes = np.concatenate([corners.min(axis=1), corners.max(axis=1)], axis=1)  # y,x min; max
  boxes[0] = [0.0, 0.0, 1.0, 1.0]
  boxes = boxes.astype(np.float32)
  masks = np.asarray(boxes_to_masks(jnp.asarray(boxes), 9, 14))
  for box, mask in zip(boxes, masks, strict=True):
    np.testing.assert_array_equal(mask, reference_box_mask(box, 9, 14))
  keep = masks.reshape(5, -1).any(axis=1)
  maps = tied_maps(4, (5, 9, 14))[keep]
  by_box = pointing_game(jnp.asarray(maps), jnp.asarray(boxes[keep]), tolerance=2.0)
  by_mask = pointing_game(jnp.asarray(maps), jnp.asarray(masks[keep]), tolerance=2.0)
  for a, b in zip(by_box, by_mask, strict=True):
    np.testing.assert_array_equal(a, b)


def test_a_pixel_edge_box_covers_exactly_its_rows_and_columns():
  """The synthetic dataset's convention: ymin = 2/H, ymax = 6/H covers rows 2..5."""
  height, width = 12, 30
  box = np.array([[2 / height, 20 / width, 6 / height, 23 / width]], np.float32)
  expected = np.zeros((1, height, width), bool)
  expected[0, 2:6, 20:23] = True
  np.testing.assert_array_equal(boxes_to_masks(jnp.asarray(box), height, width), expected)


def single_peak(height, width, row, col):
  saliency = np.zeros((height, width), np.float32)
  saliency[row, col] = 1.0
  return saliency


def test_fifteen_pixels_away_hits_and_sixteen_misses():
  region = np.zeros((24, 40), bool)
  region[2, 3] = True
  maps = np.stack([single_peak(24, 40, 2 + 9, 3 + 12),   # 9^2 + 12^2 = 15^2
                   single_peak(24, 40, 2, 3 + 16),       # 16 px along the row
                   single_peak(24, 40, 2 + 16, 3),       # 16 px along the column
                   single_peak(24, 40, 2 + 11, 3 + 11),  # 15.56 px
                   single_peak(24, 40, 2, 3)])           # inside
  got = pointing_game(jnp.asarray(maps), jnp.asarray(np.stack([region] * 5)))
  np.testing.assert_array_equal(got.hit, [True, False, False, False, True])
  np.testing.assert_allclose(got.distance, [15.0, 16.0, 16.0, math.hypot(11, 11), 0.0],
                             rtol=float_tolerance.EPS, atol=0)  # one rounding


def test_rows_and_columns_are_not_swapped():
  """A non-square image and a wide region near the top right: only (row, col) order hits."""
  height, width = 12, 30
  region = np.zeros((height, width), bool)
  region[1:3, 20:26] = True
  box = np.array([1 / height, 20 / width, 3 / height, 26 / width], np.float32)
  maps = np.stack([single_peak(height, width, 2, 25),   # inside
                   single_peak(height, width, 10, 2),   # far, at the bottom left
                   single_peak(height, width, 2, 14)])  # 6 px left of the region
  for region_arg in (np.stack([region] * 3), np.stack([box] * 3)):
    got = pointing_game(jnp.asarray(maps), jnp.asarray(region_arg), tolerance=6.0)
    np.testing.assert_array_equal(got.hit, [True, False, True])
    np.testing.assert_allclose(got.distance, [0.0, math.hypot(8, 18), 6.0],
                               rtol=float_tolerance.EPS, atol=0)  # one rounding
    energy = energy_pointing_game(jnp.asarray(maps), jnp.asarray(region_arg))
    np.testing.assert_array_equal(energy.proportion, [1.0, 0.0, 0.0])  # sums of 0 and 1
    # A pixel count over H W: two roundings at most.
    np.testing.assert_allclose(energy.region_fraction, 12 / (height * width),
                               rtol=float_tolerance.sum_rtol(2), atol=0)


def test_any_maximal_pixel_counts():
  region = np.zeros((1, 10, 20), bool)
  region[0, 0, 0] = True
  saliency = single_peak(10, 20, 9, 19)
  saliency[1, 1] = 1.0  # a second maximum, next to the region
  got = pointing_game(jnp.asarray(saliency[None]), jnp.asarray(region), tolerance=1.5)
  assert got.hit[0] and got.num_maxima[0] == 2
  np.testing.assert_allclose(got.distance[0], math.sqrt(2), rtol=float_tolerance.EPS, atol=0)
  constant = pointing_game(jnp.ones((1, 10, 20)), jnp.asarray(region), tolerance=0.0)
  assert constant.hit[0] and constant.num_maxima[0] == 200 and constant.distance[0] == 0


# The energy's two sums of <= 16 x 16 min-max normalised values >= 0 (3 roundings each).
ENERGY_RTOL = float_tolerance.sum_rtol(2 * (16 * 16 + 3))


def test_energy_matches_the_pixel_loop_reference():
  rng = np.random.default_rng(5)
  maps = rng.normal(size=(5, 9, 13)).astype(np.float32)
  maps[2] = -3.0  # constant: the region's area fraction
  masks = random_regions(6, (5, 9, 13))
  got = energy_pointing_game(jnp.asarray(maps), jnp.asarray(masks))
  assert isinstance(got, EnergyPointingGame)
  np.testing.assert_allclose(got.proportion, reference_energy(maps, masks), rtol=ENERGY_RTOL,
                             atol=0)
  # Pixel counts over H W: two roundings at most.
  np.testing.assert_allclose(got.region_fraction, masks.mean(axis=(1, 2)),
                             rtol=float_tolerance.sum_rtol(2), atol=0)
  np.testing.assert_allclose(got.proportion[2], masks[2].mean(), rtol=float_tolerance.sum_rtol(2),
                             atol=0)


def test_energy_is_one_for_a_map_inside_the_region_and_ignores_affine_changes():
  masks = random_regions(7, (3, 8, 12))
  inside = masks.astype(np.float32) * np.random.default_rng(8).uniform(1, 2, (3, 8, 12))
  np.testing.assert_allclose(energy_pointing_game(jnp.asarray(inside), jnp.asarray(masks))
                             .proportion, 1.0, rtol=ENERGY_RTOL, atol=0)
  maps = jnp.asarray(tied_maps(9, (3, 8, 12)))
  base = energy_pointing_game(maps, jnp.asarray(masks)).proportion
  moved = energy_pointing_game(3.0 * maps - 7.0, jnp.asarray(masks)).proportion
  np.testing.assert_allclose(moved, base, rtol=2 * ENERGY_RTOL, atol=0)


def test_jit_vmap_and_batch_invariance():
  maps = jnp.asarray(np.random.default_rng(10).normal(size=(4, 9, 11)), jnp.float32)
  masks = jnp.asarray(random_regions(11, (4, 9, 11)))
  eager = pointing_game(maps, masks, tolerance=3.0)
  jitted = jax.jit(lambda m, r: pointing_game(m, r, tolerance=3.0))(maps, masks)
  mapped = jax.vmap(lambda m, r: pointing_game(m[None], r[None], tolerance=3.0))(maps, masks)
  for a, b, c in zip(eager, jitted, mapped, strict=True):
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c[:, 0])
  alone = pointing_game(maps[2:3], masks[2:3], tolerance=3.0)
  for a, b in zip(eager, alone, strict=True):
    np.testing.assert_array_equal(a[2:3], b)
  energy = energy_pointing_game(maps, masks)
  energy_jit = jax.jit(energy_pointing_game)(maps, masks)
  energy_vmap = jax.vmap(lambda m, r: energy_pointing_game(m[None], r[None]))(maps, masks)
  for a, b, c in zip(energy, energy_jit, energy_vmap, strict=True):  # other programs
    np.testing.assert_allclose(a, b, rtol=2 * ENERGY_RTOL, atol=0)
    np.testing.assert_allclose(a, c[:, 0], rtol=2 * ENERGY_RTOL, atol=0)


def reference_accuracy(hit, labels, num_classes, valid):
  rates = []
  for k in range(num_classes):
    chosen = [h for h, label, v in zip(hit, labels, valid, strict=True) if label == k and v]
    if chosen:
      rates.append(sum(chosen) / len(chosen))
  return sum(rates) / len(rates)


def test_accuracy_is_the_mean_over_classes_with_examples():
  rng = np.random.default_rng(12)
  hit = rng.uniform(size=40) < 0.6
  labels = rng.choice([0, 1, 3, 4], size=40, p=[0.7, 0.1, 0.1, 0.1]).astype(np.int32)
  valid = rng.uniform(size=40) < 0.8
  got = pointing_accuracy(jnp.asarray(hit), jnp.asarray(labels), 6, jnp.asarray(valid))
  # Exact counts, their ratios, and the mean of <= 6 of them: a few roundings.
  rtol = float_tolerance.sum_rtol(6 + 4)
  np.testing.assert_allclose(got.accuracy, reference_accuracy(hit, labels, 6, valid),
                             rtol=rtol, atol=0)
  assert np.isnan(np.asarray(got.class_accuracy)[[2, 5]]).all()
  np.testing.assert_array_equal(got.class_count, np.bincount(labels[valid], minlength=6))
  every = pointing_accuracy(jnp.asarray(hit), jnp.asarray(labels), 6)
  np.testing.assert_allclose(every.accuracy, reference_accuracy(hit, labels, 6, [True] * 40),
                             rtol=rtol, atol=0)
  # A mean over classes, not over images: one rare class weighs as much as a frequent one.
  skewed = pointing_accuracy(jnp.array([True] * 9 + [False]), jnp.array([0] * 9 + [1]), 2)
  np.testing.assert_allclose(skewed.accuracy, 0.5)
  jitted = jax.jit(lambda h, y, v: pointing_accuracy(h, y, 6, v))(hit, labels, valid)
  np.testing.assert_allclose(jitted.accuracy, got.accuracy, rtol=2 * rtol, atol=0)


def test_empty_regions_are_named_by_batch_index():
  masks = random_regions(13, (3, 8, 10))
  masks[1] = False
  maps = jnp.zeros((3, 8, 10))
  with pytest.raises(ValueError, match=r"region.*\[1\]"):
    pointing_game(maps, jnp.asarray(masks))
  with pytest.raises(ValueError, match=r"region.*\[1\]"):
    energy_pointing_game(maps, jnp.asarray(masks))
  tiny = jnp.array([[0.0, 0.0, 1.0, 1.0], [0.5, 0.5, 0.5, 0.5], [0.1, 0.1, 0.3, 0.3]])
  with pytest.raises(ValueError, match=r"region.*\[1\]"):  # a box between pixel centres
    pointing_game(maps, tiny)


@pytest.mark.parametrize("maps, region, error, pattern", [
    (np.zeros((2, 8, 10), np.float32), np.ones((2, 8, 9), bool), ValueError, "region"),
    (np.zeros((2, 8, 10), np.float32), np.ones((3, 4), np.float32), ValueError, "region"),
    (np.zeros((2, 8, 10), np.float32), np.ones((2, 8, 10), np.float32), TypeError, "bool"),
    (np.zeros((2, 8, 10), np.float32), np.ones((2, 4), np.int32), TypeError, "region"),
    (np.zeros((2, 8, 10), np.float32), np.array([[0, 0, 1, 1], [0.5, 0, 0.2, 1]], np.float32),
     ValueError, "ymin <= ymax"),
    (np.zeros((2, 8, 10), np.float32), np.array([[0, 0, 1, 1.5], [0, 0, 1, 1]], np.float32),
     ValueError, r"\[0, 1\]"),
    (np.full((2, 8, 10), np.nan, np.float32), np.ones((2, 8, 10), bool), ValueError, "finite"),
    (np.zeros((8, 10), np.float32), np.ones((8, 10), bool), ValueError, "maps"),
    (np.zeros((2, 8, 10), np.int32), np.ones((2, 8, 10), bool), TypeError, "maps"),
    ([[0.0]], np.ones((1, 1, 1), bool), TypeError, "maps"),
])
def test_bad_inputs_are_rejected(maps, region, error, pattern):
  for metric in (pointing_game, energy_pointing_game):
    with pytest.raises(error, match=pattern):
      metric(maps, region)


def test_bad_tolerance_and_accuracy_inputs_are_rejected():
  maps, masks = jnp.zeros((1, 4, 4)), jnp.ones((1, 4, 4), bool)
  for tolerance in (-1.0, math.inf, "15", True):
    with pytest.raises(ValueError, match="tolerance"):
      pointing_game(maps, masks, tolerance=tolerance)
  hit, labels = jnp.array([True, False]), jnp.array([0, 1])
  with pytest.raises(ValueError, match=r"labels.*\[0, 2\).*\[2\]"):
    pointing_accuracy(hit, jnp.array([0, 2]), 2)
  with pytest.raises(ValueError, match="labels"):
    pointing_accuracy(hit, jnp.array([0, 1, 1]), 2)
  with pytest.raises(TypeError, match="labels"):
    pointing_accuracy(hit, jnp.array([0.0, 1.0]), 2)
  with pytest.raises(TypeError, match="hit"):
    pointing_accuracy(jnp.array([1, 0]), labels, 2)
  with pytest.raises(ValueError, match="valid"):
    pointing_accuracy(hit, labels, 2, jnp.array([False, False]))
  with pytest.raises(ValueError, match="num_classes"):
    pointing_accuracy(hit, labels, 0)


def test_results_are_named_tuples_of_per_image_arrays():
  got = pointing_game(jnp.zeros((3, 5, 6)).at[:, 1, 2].set(1.0), jnp.ones((3, 5, 6), bool))
  assert isinstance(got, PointingGame)
  assert all(value.shape == (3,) for value in got)
  assert got.num_maxima.dtype == jnp.int32
