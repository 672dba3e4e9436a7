"""Tests of salijax.methods.mask_search against a slow reference and known answers."""

import functools
from typing import NamedTuple

import float_tolerance
import jax
import jax.numpy as jnp
import numpy as np
import tiny_classifiers
from skimage import transform

from salijax.classifier import Classifier
from salijax.methods.map_ops import upsample_bilinear
from salijax.methods.mask_search import (
  mask_search,
  mask_search_with_objective,
  threshold_map,
  update_cells,
)

SIZE = 32


def random_images(seed: int, shape: tuple[int, ...], low: float = 0.0,
                  high: float = 1.0) -> jax.Array:
  """Uniform images, drawn by numpy (jax.random compiles a program per shape)."""
  return jnp.asarray(np.random.default_rng(seed).uniform(low, high, shape), jnp.float32)


def upsample(grid: np.ndarray, height: int, width: int) -> np.ndarray:
  """Reference bilinear upsampling (half-pixel centres, edge values) by skimage."""
  return transform.resize(np.asarray(grid, np.float64), (height, width), order=1, mode="edge",
                          anti_aliasing=False)


def test_update_rule_on_hand_made_cells():
  """p = 0.8, d = -0.3, rate 0.5: on cells stay if u < 0.8 (keeping their value), off
  cells turn on if u < 0.2, at 1 - 0.5 * 0.3 = 0.85."""
  cells = jnp.array([[[0.0, 1.0, 0.9, 0.0, 0.95, 1.0]]])
  uniforms = jnp.array([[[0.1, 0.5, 0.95, 0.7, 0.79, 0.8]]])
  got = update_cells(cells, uniforms, jnp.array([0.8]), jnp.array([-0.3]), 0.5)
  # float32 inputs, then 1 - rate |d|: a few roundings of values <= 1.
  np.testing.assert_allclose(got, [[[0.85, 1.0, 0.0, 0.0, 0.95, 0.0]]],
                             rtol=float_tolerance.sum_rtol(4), atol=0)


def test_threshold_map_is_relu_of_sum_minus_threshold_mean_over_max():
  total = jnp.array([[[1.0, 2.0], [3.0, 6.0]], [[2.0, 2.0], [2.0, 2.0]]])
  got = threshold_map(total, 0.96)
  shifted = np.maximum(np.array([[1.0, 2.0], [3.0, 6.0]]) - 0.96 * 3.0, 0.0)
  atol = threshold_map_atol(np.asarray(total[0], np.float64), 0.0, 0.96)
  np.testing.assert_allclose(got[0], shifted / shifted.max(), rtol=0, atol=atol)
  # A flat sum: 0.04 S / 0.04 S, the same float32 numbers divided: exactly 1.
  np.testing.assert_array_equal(got[1], 1.0)
  np.testing.assert_array_equal(threshold_map(total, 1.5)[1], 0.0)  # nothing above: 0


def threshold_map_atol(total: np.ndarray, total_atol: float, threshold: float) -> float:
  """Bound on the error of threshold_map of one image's sums f64[H,W] >= 0 that err by
  <= total_atol: the shift by threshold times their mean (H W terms), then the division
  by the largest shifted sum (which errs as much again)."""
  shifted = np.maximum(total - threshold * total.mean(), 0.0).max()
  mean_atol = total_atol + float_tolerance.sum_atol(total.mean(), total.size)
  return 2 * (total_atol + threshold * mean_atol + float_tolerance.sum_atol(total.max(), 2)) / (
      shifted)


class Reference(NamedTuple):
  """What reference_mask_search computes, with bounds on float32's rounding errors."""

  maps: np.ndarray  # f64[B,H,W]
  sums: np.ndarray  # f64[B,H,W], the sums S of the upsampled masks
  map_atol: float
  sum_atol: float
  scores: np.ndarray  # f64[B,N], p_t of each step
  score_atol: float
  last_mask: np.ndarray  # f64[B,H,W], up(v_{N-1}), the mask scored at step N


def reference_mask_search(clf, images, labels, key, *, grid, initial_fraction, num_steps, rate,
                          threshold, fill):
  """docs/methods.md#mask_search literally, one image and one step at a time, with the
  module's key derivation.

  Returns a `Reference` (random_cnn's float32 rounding bounds). (A draw within rounding of
  its threshold p or 1 - p could take the other branch in float32, a change no tolerance
  covers; with these keys the closest draw is ~5e-5 from its threshold.)
  """
  apply = jax.jit(clf.apply)
  terms = jax.jit(functools.partial(tiny_classifiers.logit_terms, clf))
  n = tiny_classifiers.random_cnn_terms(images.shape[1] // 4, images.shape[2] // 4) + 8
  images = np.asarray(images, np.float64)
  batch, height, width, _ = images.shape
  maps, sums, scores, last, map_atol, sum_atol, all_score_atol = [], [], [], [], 0.0, 0.0, 0.0
  for b in range(batch):
    image_key = jax.random.fold_in(key, b)

    def uniforms(step, image_key=image_key):
      draw = jax.random.uniform(jax.random.fold_in(image_key, step), (grid * grid,))
      return np.asarray(draw, np.float64).reshape(grid, grid)

    cells = (uniforms(0) < initial_fraction).astype(np.float64)
    previous, total, score_atol = 0.0, np.zeros((height, width)), 0.0
    scores.append([])
    for t in range(1, num_steps + 1):
      mask = upsample(cells, height, width)[..., None]
      masked = jnp.asarray((images[b] * mask + fill * (1 - mask))[None], jnp.float32)
      logits = np.asarray(apply(clf.variables, masked)[0], np.float64)
      score = (np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum())[labels[b]]
      # Logits within dz of exact make the softmax probability within p (2 dz + ...).
      dz = float_tolerance.sum_atol(terms(masked), n)
      score_atol = max(score_atol, score * (2 * dz + (len(logits) + 3) * float_tolerance.EPS))
      scores[-1].append(score)
      scored = mask[..., 0]
      u = uniforms(t)
      new = np.zeros_like(cells)
      for i in range(grid):
        for j in range(grid):
          if cells[i, j] > 0:  # on: stays on (keeping its value) with probability p
            new[i, j] = cells[i, j] if u[i, j] < score else 0.0
          elif u[i, j] < 1 - score:  # off: turns on with probability 1 - p, scaled
            new[i, j] = 1 - rate * abs(score - previous)
      cells, previous = new, score
      total += upsample(cells, height, width)
    shifted = np.maximum(total - threshold * total.mean(), 0.0)
    maps.append(shifted / shifted.max() if shifted.max() > 0 else shifted)
    sums.append(total)
    last.append(scored)
    # Each step's new cells err by rate 2 score_atol; the sums add num_steps masks (and 8
    # roundings of the upsampling each).
    total_atol = (num_steps * rate * 2 * score_atol
                  + float_tolerance.sum_atol(total.max(), num_steps + 8))
    sum_atol = max(sum_atol, total_atol)
    map_atol = max(map_atol, threshold_map_atol(total, total_atol, threshold))
    all_score_atol = max(all_score_atol, score_atol)
  return Reference(np.stack(maps), np.stack(sums), map_atol, sum_atol, np.array(scores),
                   all_score_atol, np.stack(last))


def test_matches_slow_reference():
  clf = tiny_classifiers.random_cnn(jax.random.key(0), num_classes=3)
  images = random_images(1, (3, SIZE, SIZE, 3))
  labels = jnp.array([2, 0, 1])
  key = jax.random.key(3)
  settings = {"grid": 4, "initial_fraction": 0.4, "num_steps": 40, "rate": 0.5, "fill": 0.3}
  got = mask_search(clf, images, labels, key=key, threshold=0.96, **settings)
  assert got.shape == (3, SIZE, SIZE) and got.dtype == jnp.float32
  reference = reference_mask_search(clf, images, np.asarray(labels), key, threshold=0.96,
                                    **settings)
  sums = reference.sums
  # Not a trivial run: cells switched on (values below 1 appear) and the maps differ.
  assert (np.unique(np.round(sums, 6)).size > 10) and reference.maps.max() == 1.0
  np.testing.assert_allclose(got, reference.maps, rtol=0, atol=reference.map_atol)
  # threshold = 0: the map is the sum of the masks over its maximum.
  raw = mask_search(clf, images, labels, key=key, threshold=0.0, **settings)
  np.testing.assert_allclose(raw, sums / sums.max(axis=(1, 2), keepdims=True), rtol=0,
                             atol=2 * reference.sum_atol / sums.max())
  # The objective: every step's score, from the same search (the same maps).
  found = mask_search_with_objective(clf, images, labels, key=key, threshold=0.96, **settings)
  np.testing.assert_array_equal(found.maps, got)
  assert found.objective.shape == (3, 40) and found.objective.dtype == jnp.float32
  np.testing.assert_allclose(found.objective, reference.scores, rtol=0,
                             atol=reference.score_atol)
  # The last mask scored: up(v_{N-1}), cell values <= 1 that err by rate 2 score_atol (as the
  # sums' terms), then 8 roundings.
  np.testing.assert_allclose(found.mask, reference.last_mask, rtol=0,
                             atol=settings["rate"] * 2 * reference.score_atol
                             + float_tolerance.sum_atol(1.0, 8))


def test_last_objective_is_the_score_of_the_returned_mask():
  """objective[:, -1] is f_c of the image masked by the returned mask, recomputed in float64
  from the classifier's logits; the scores change from step to step by far more than that
  bound, so a mask off by one step would fail."""
  clf = tiny_classifiers.random_cnn(jax.random.key(1), num_classes=3)
  images = random_images(5, (2, SIZE, SIZE, 3))
  labels = np.array([1, 2])
  fill = 0.2
  found = mask_search_with_objective(clf, images, labels, key=jax.random.key(4), num_steps=25,
                                     grid=4, rate=0.3, fill=fill)
  mask = np.asarray(found.mask, np.float64)[..., None]
  masked = jnp.asarray(np.asarray(images, np.float64) * mask + fill * (1 - mask), jnp.float32)
  logits = np.asarray(jax.jit(clf.apply)(clf.variables, masked), np.float64)
  probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
  recomputed = (probabilities / probabilities.sum(axis=1, keepdims=True))[[0, 1], labels]
  # Both sides: the logits of one program within dz of exact (random_cnn's terms), the mask
  # within 8 roundings, the softmax a few more.
  n = tiny_classifiers.random_cnn_terms(SIZE // 4, SIZE // 4) + 8
  dz = float_tolerance.sum_atol(jax.jit(functools.partial(tiny_classifiers.logit_terms, clf))(
      masked), n)
  atol = 2 * recomputed.max() * (2 * dz + (logits.shape[1] + 3) * float_tolerance.EPS)
  np.testing.assert_allclose(found.objective[:, -1], recomputed, rtol=0, atol=atol)
  assert np.abs(np.diff(np.asarray(found.objective), axis=1)).max() > 100 * atol


def test_search_scores_above_masks_drawn_without_feedback():
  """The search is no descent (p_t goes up and down); what it guarantees is a bias: a cell
  keeps its state with probability p_t, so high-scoring states last, while cells flipped
  at a fixed rate are on half of the time whatever the score. A classifier whose class 0
  rises (class 1 falls) with the brightness of the top-left quadrant, steep enough that
  random masks score anywhere in (0, 1): each chain's mean objective over N = 400 steps
  exceeds the mean score of 4000 masks with cells on with probability 1/2 (no feedback) by
  > 0.05 (observed: random 0.50, chains 0.61-0.71 for either class over keys 3 to 7).
  Neither is it an ascent: class 1 starts high (30 % of the cells on leave the quadrant
  dark, p_1 ~ 0.88 on average) and its chains settle lower (first steps 0.67-0.92 for
  key 3, means 0.66-0.69)."""
  size = 32
  inside = np.zeros((size, size), np.float32)
  inside[:16, :16] = 1.0

  def apply(v, x):
    z = 10.0 * ((x.mean(axis=-1) * v).sum(axis=(1, 2)) / v.sum() - 0.25)
    return jnp.stack([z, -z], axis=-1)

  clf = Classifier(variables=jnp.asarray(inside), apply=apply)
  images = jnp.full((8, size, size, 3), 0.5)
  labels = jnp.array([0, 0, 0, 0, 1, 1, 1, 1])
  objective = np.asarray(mask_search_with_objective(clf, images, labels, key=jax.random.key(3),
                                                    num_steps=400).objective)
  cells = (np.random.default_rng(0).random((4000, 8, 8)) < 0.5).astype(np.float32)
  masks = upsample_bilinear(jnp.asarray(cells), size, size)[..., None]
  blind = np.asarray(jax.nn.softmax(apply(clf.variables, images[:1] * masks)), np.float64)
  assert 0.1 < blind.std(axis=0).min()  # random masks span the scores
  assert (objective[:4].mean(axis=1) > blind[:, 0].mean() + 0.05).all()
  assert (objective[4:].mean(axis=1) > blind[:, 1].mean() + 0.05).all()
  assert objective[4:, 0].mean() > objective[4:].mean() + 0.05


def test_constant_scores_give_known_sums():
  """p = 1: on cells stay on, off cells never turn on, so S = N up(initial cells).
  p = 0: every cell flips every step (switched-on cells scaled by 1 - rate |0 - 0| = 1), so
  for N even S = N / 2 everywhere and the map is 1 everywhere."""
  clf = Classifier(variables={"logits": jnp.array([200.0, -200.0])},
                   apply=lambda v, x: jnp.broadcast_to(v["logits"], (x.shape[0], 2)))
  images = random_images(0, (2, 24, 24, 3))
  key = jax.random.key(5)
  maps = mask_search(clf, images, jnp.array([0, 1]), key=key, num_steps=6)
  initial = np.asarray(jax.random.uniform(jax.random.fold_in(jax.random.fold_in(key, 0), 0),
                                          (64,))).reshape(8, 8) < 0.3
  assert 0 < initial.sum() < 64
  total = 6 * upsample(initial, 24, 24)
  shifted = np.maximum(total - 0.96 * total.mean(), 0.0)
  # p is exactly 1 or 0 (exp(-400) underflows): the sums only round (6 masks of 8 roundings).
  atol = threshold_map_atol(total, float_tolerance.sum_atol(total.max(), 6 + 8), 0.96)
  np.testing.assert_allclose(maps[0], shifted / shifted.max(), rtol=0, atol=atol)
  flat = np.full((24, 24), 3.0)
  atol = threshold_map_atol(flat, float_tolerance.sum_atol(3.0, 6 + 8), 0.96)
  np.testing.assert_allclose(maps[1], 1.0, rtol=0, atol=atol)


def test_known_answer_on_region_classifier():
  """Class 0 rises with the region's brightness, class 1 falls with it.

  A high score freezes the cells (on cells stay on, off cells stay off), so states
  that keep the evidence last: for class 0 the region's cells are on more often than
  the others (whose on-fraction tends to 1/2 at any fixed score), for class 1 less
  often. Eight chains (the image repeated; each index draws its own numbers), N =
  1000. Asserted: every class-0 chain's summed mask is higher in the region than
  outside it (mean ratio > 1.02; observed 1.04-1.20 over images and keys) and every
  class-1 chain's lower (observed 0.991-0.994); after the threshold the region (25 % of
  the image) holds on average > 40 % of the class-0 map (observed 47-51 %) and < 25 %
  of the class-1 map (observed 21-22 %).
  """
  size, region = 48, (8, 32, 16, 40)
  clf = tiny_classifiers.region_classifier(size, size, region, num_classes=2)
  image = random_images(1, (1, size, size, 3), 0.4, 0.9)
  images = jnp.repeat(image, 8, axis=0)
  labels = jnp.array([0, 0, 0, 0, 1, 1, 1, 1])
  key = jax.random.key(3)
  sums = np.asarray(mask_search(clf, images, labels, key=key, num_steps=1000, threshold=0.0))
  maps = np.asarray(mask_search(clf, images, labels, key=key, num_steps=1000))
  inside = np.zeros((size, size), bool)
  inside[region[0]:region[1], region[2]:region[3]] = True
  ratio = sums[:, inside].mean(axis=1) / sums[:, ~inside].mean(axis=1)
  assert (ratio[:4] > 1.02).all() and (ratio[4:] < 1.0).all()
  share = maps[:, inside].sum(axis=1) / maps.sum(axis=(1, 2))
  assert share[:4].mean() > 0.4 and share[4:].mean() < 0.25


def test_batch_composition_jit_and_no_recompilation():
  """Image b's map depends on (image, label, key, b) only."""
  clf = tiny_classifiers.random_cnn(jax.random.key(0), num_classes=3)
  images = random_images(2, (3, SIZE, SIZE, 3))
  labels = jnp.array([1, 2, 0])
  key = jax.random.key(7)
  settings = {"num_steps": 30, "grid": 4}
  batch = mask_search(clf, images, labels, key=key, **settings)
  others = images.at[0].set(random_images(4, (SIZE, SIZE, 3))).at[2].set(0.5)
  changed = mask_search(clf, others, jnp.array([0, 2, 2]), key=key, **settings)
  np.testing.assert_array_equal(changed[1], batch[1])  # row 1 of the same program
  assert np.abs(changed[0] - batch[0]).max() > 1e-3
  inside_jit = jax.jit(lambda x, y, k: mask_search(clf, x, y, key=k, **settings))(
      images, labels, key)
  # Another program, each within the reference's bound of the exact maps.
  atol = reference_mask_search(clf, images, np.asarray(labels), key, initial_fraction=0.3,
                               rate=0.02, threshold=0.96, fill=0.0, **settings).map_atol
  np.testing.assert_allclose(inside_jit, batch, rtol=0, atol=2 * atol)
