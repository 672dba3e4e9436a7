"""Perturbation curves: units of the image removed in order of attribution (Quantus's family).

Four metrics share one idea. The image is cut into units u (pixels, square
patches, superpixels); the units are ranked by an attribution statistic
(rank 0 first; ties: the lower unit index first, a stable sort); step t
replaces the units of rank < t k by a baseline image b:

  x_t = where(rank(unit(p)) < t k, b, x),   y_t = f_c(x_t),   t = 0..n

(y_0 is the unperturbed score). Every step image is built from t alone and
scored by `salijax.metrics.perturbed_scores`, so memory does not grow with n.

- `pixel_flipping` (S. Bach et al., "On Pixel-Wise Explanations for
  Non-Linear Classifier Decisions by Layer-Wise Relevance Propagation", PLoS
  ONE 2015): units = pixels (all channels together) by decreasing attribution,
  k = `features_in_step` pixels per step, n = ceil(H W / k). curve f32[B, n + 1]
  = y_t; auc = (sum_t y_t - (y_0 + y_n) / 2) / n, the trapezoid over the
  fraction t / n removed (lower is better).
- `region_perturbation` (W. Samek et al., "Evaluating the Visualization of
  What a Deep Neural Network Has Learned", IEEE TNNLS 2017): units = the
  non-overlapping `patch_size` squares of a grid centred on the image (the
  image is notionally padded by floor/ceil halves of the remainder, as
  Quantus pads it; a border patch holds only its pixels inside the image),
  ranked by their summed attribution, "morf" (most relevant first) or "lerf"
  (least first); L = min(regions_evaluation, number of patches) steps.
  curve f32[B, L + 1] = y_0 - y_t (drops); aopc = mean_t (y_0 - y_t) over
  t = 0..L (the paper's AOPC; higher is better for "morf", lower for "lerf").
- `selectivity` (G. Montavon, W. Samek, K.-R. Mueller, "Methods for
  Interpreting and Understanding Deep Neural Networks", DSP 2018): the same
  patches by decreasing summed attribution, all P of them removed; curve
  f32[B, P + 1] = y_t, auc as for pixel flipping (lower is better).
- `irof` (L. Rieger, L. K. Hansen, "IROF: a low resource evaluation metric
  for explanation methods", ICLR 2020 workshop, arXiv:2003.08747): units = the
  superpixels of SLIC (`salijax.methods.slic`, scikit-image's defaults as
  Quantus calls it: 100 segments, compactness 10, no smoothing) or given
  `segments`, ranked by their mean attribution; curve f32[B, K + 1] = y_t / y_0
  (K = the label range; for an image with n_b non-empty segments the curve is
  flat after t = n_b); aoc = 1 - (sum_{t<=n_b} r_t - (r_0 + r_{n_b}) / 2) / n_b,
  the area over the normalised curve on [0, 1] (higher is better).

Baselines b (`baseline`, `salijax.metrics.baselines`): "black" (0), "white"
(1), "min" / "max" / "mean" (one value per image: the min, max or mean over
its pixels and channels, what Quantus's "black", "white" and "mean" give at
the first step), "blur", "uniform" (i.i.d. U[0, 1) per pixel and channel,
drawn once per image from `key`), "quantus_mean" (Quantus's "mean": each step's units get
the mean over all values of the image as perturbed by the earlier steps, for
patches of the image edge-padded to whole patches; `drifting_mean_baseline`),
a number in [0, 1] or 3 channel values in [0, 1].
Quantus's readings of the areas (`auc="quantus"`, `aoc="quantus"`): its
trapezoid over the curve without y_0 with unit spacing.
"""

import functools
import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from salijax import validation
from salijax.classifier import Classifier
from salijax.compute_dtype import takes_compute_dtype
from salijax.metrics import baselines
from salijax.metrics.perturbed_scores import SCORES, perturbed_scores
from salijax.metrics.perturbed_scores import per_forward as _per_forward
from salijax.metrics.saliency_order import pixel_ranks

BASELINES = baselines.NAMES + ("quantus_mean",)
ORDERS = ("morf", "lerf")
AUCS = ("normalised", "quantus")


# ---------------------------------------------------------------- shared machinery


def unit_ranks(scores: jax.Array, descending: bool = True) -> jax.Array:
  """f32[B,U] unit statistics -> i32[B,U] ranks (0 = removed first); ties: lower index first."""
  order = jnp.argsort(-scores if descending else scores, axis=1, stable=True)
  positions = jnp.broadcast_to(jnp.arange(scores.shape[1], dtype=jnp.int32), order.shape)
  return jax.vmap(lambda o, p: jnp.zeros_like(p).at[o].set(p))(order, positions)


def patch_units(height: int, width: int, patch_size: int) -> tuple[np.ndarray, int]:
  """The patch index i32[H,W] of every pixel and the number of patches P (module doc).

  The grid covers the image padded to a multiple of `patch_size` by
  floor(r / 2) rows (columns) before and ceil(r / 2) after, r the padding needed.
  """
  def cells(size):
    pad = (-size) % patch_size
    return (np.arange(size) + pad // 2) // patch_size, -(-size // patch_size)

  rows, count_y = cells(height)
  cols, count_x = cells(width)
  return (rows[:, None] * count_x + cols[None, :]).astype(np.int32), count_y * count_x


def unit_sums(values: jax.Array, units: jax.Array, num_units: int) -> jax.Array:
  """f32[B,H,W] values, i32[B,H,W] units in [0, U) -> f32[B,U], the sum over each unit."""
  return jax.vmap(lambda v, u: jax.ops.segment_sum(v.reshape(-1), u.reshape(-1),
                                                   num_segments=num_units))(values, units)


def drifting_mean_baseline(images: jax.Array, steps: jax.Array, num_steps: int,
                           domain: jax.Array | None = None,
                           domain_steps: jax.Array | None = None) -> jax.Array:
  """Quantus's "mean": each step's units get the mean of the image as perturbed so far.

  Step s (0-based) replaces its pixels by m_s, the mean over all values of the
  domain (the image, or the padded image Quantus perturbs) after steps < s;
  the pixels of step s still hold their own values then, so
  m_{s+1} = m_s + (c_s m_s - S_s) / N (S_s, c_s: the sum and count of the
  domain values that step s replaces; N: all domain values).

  Args:
    images: f32[B,H,W,3].
    steps: i32[B,H,W], the step in [0, num_steps) replacing each pixel.
    num_steps: S.
    domain: f32[B,h,w,3], the array whose mean is taken (default: images).
    domain_steps: i32[B,h,w], its pixels' steps (default: steps).

  Returns:
    f32[B,H,W,3]: b, each pixel's replacement value m_{step} on every channel.
  """
  domain = images if domain is None else domain
  domain_steps = steps if domain_steps is None else domain_steps
  batch = images.shape[0]
  size = domain[0].size
  sums = unit_sums(domain.sum(axis=-1), domain_steps, num_steps)  # f32[B,S]
  counts = domain.shape[-1] * unit_sums(jnp.ones(domain.shape[:3]), domain_steps, num_steps)

  def step(mean, sum_count):
    total, count = sum_count
    return mean + (count * mean - total) / size, mean

  first = domain.mean(axis=(1, 2, 3))
  _, values = jax.lax.scan(step, first, (sums.T, counts.T))  # f32[S,B]
  pixel = jnp.take_along_axis(values.T, steps.reshape(batch, -1), axis=1)
  return jnp.broadcast_to(pixel.reshape(*steps.shape, 1), images.shape)


def removal_scores(clf: Classifier, images: jax.Array, baseline: jax.Array, ranks: jax.Array,
                   labels: jax.Array, *, num_points: int, units_per_step: int,
                   per_forward: int, score: str) -> jax.Array:
  """f32[B, num_points]: y_t = f_c(where(rank < t k, b, x)) for t = 0..num_points - 1.

  Args:
    clf: the Classifier.
    images, baseline: f32[B,H,W,3], x and b.
    ranks: i32[B,H,W], the rank of each pixel's unit.
    labels: i32[B], the classes c.
    num_points: n + 1, the steps scored.
    units_per_step: k.
    per_forward: steps of every image per forward (memory, not the result).
    score: "softmax" or "logit".
  """
  image, base, rank = images[:, None], baseline[:, None], ranks[:, None, ..., None]

  def copies(jobs: jax.Array) -> jax.Array:
    removed = rank < (jobs * units_per_step)[None, :, None, None, None]
    return jnp.where(removed, base, image)

  return perturbed_scores(clf, copies, labels, num_jobs=num_points, per_forward=per_forward,
                          score=score)


def trapezoid(curves: jax.Array, steps: jax.Array | int) -> jax.Array:
  """f32[B, T] -> f32[B]: the trapezoid over points 0..steps (per image) spaced 1 / steps."""
  steps = jnp.broadcast_to(jnp.asarray(steps), curves.shape[:1])
  points = jnp.arange(curves.shape[1])
  inside = points[None] <= steps[:, None]
  last = jnp.take_along_axis(curves, steps[:, None], axis=1)[:, 0]
  total = jnp.where(inside, curves, 0.0).sum(axis=1) - 0.5 * (curves[:, 0] + last)
  return total / jnp.maximum(steps, 1)


def _quantus_trapezoid(curves: jax.Array, steps: jax.Array | int) -> jax.Array:
  """numpy.trapz(curves[b, 1:steps + 1], dx=1) per image: Quantus's area (no y_0)."""
  steps = jnp.broadcast_to(jnp.asarray(steps), curves.shape[:1])
  points = jnp.arange(curves.shape[1])
  inside = (points[None] >= 1) & (points[None] <= steps[:, None])
  last = jnp.take_along_axis(curves, steps[:, None], axis=1)[:, 0]
  return jnp.where(inside, curves, 0.0).sum(axis=1) - 0.5 * (curves[:, 1] + last)


# ---------------------------------------------------------------- host checks


def _check_choice(value: Any, name: str, choices: Sequence[str]) -> None:
  if not isinstance(value, str) or value not in choices:
    raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")


def _check_common(clf, images, maps, labels, *, baseline, key, score, chunk,
                  allow_constant_maps):
  labels = validation.checked_labels(clf, images, labels)
  validation.check_maps(maps, images, allow_constant=allow_constant_maps)
  validation.check_positive_int(chunk, "chunk")
  _check_choice(score, "score", SCORES)
  return labels, baselines.check_baseline(baseline, images, key=key, names=BASELINES,
                                          arrays=False)


def _key(key: Any) -> jax.Array:
  """A placeholder key where none is needed (a jit argument must be an array)."""
  return jax.random.key(0) if key is None else key


# ---------------------------------------------------------------- pixel flipping


class PixelFlipping(NamedTuple):
  """Per-image curve and area; n = ceil(H W / features_in_step)."""

  curve: jax.Array  # f32[B, n + 1], y_t after t steps (y_0: the image)
  auc: jax.Array  # f32[B], lower is better


@functools.partial(jax.jit, static_argnames=("features_in_step", "baseline", "score", "auc",
                                             "per_forward"))
def _pixel_flipping(clf, images, maps, labels, key, *, features_in_step, baseline, score, auc,
                    per_forward) -> PixelFlipping:
  _, height, width, _ = images.shape
  steps = math.ceil(height * width / features_in_step)
  ranks = pixel_ranks(maps)
  if baseline == "quantus_mean":
    base = drifting_mean_baseline(images, ranks // features_in_step, steps)
  else:
    base = baselines.baseline_images(images, baseline, key)
  curve = removal_scores(clf, images, base, ranks, labels, num_points=steps + 1,
                         units_per_step=features_in_step, per_forward=per_forward, score=score)
  area = trapezoid(curve, steps) if auc == "normalised" else _quantus_trapezoid(curve, steps)
  return PixelFlipping(curve=curve, auc=area)


@takes_compute_dtype
def pixel_flipping(clf: Classifier, images: Any, maps: Any, labels: Any = None, *,
                   key: Any = None, features_in_step: int = 1, baseline: Any = "black",
                   score: str = "softmax", auc: str = "normalised", chunk: int = 256,
                   allow_constant_maps: bool = False) -> PixelFlipping:
  """Pixel flipping (Bach et al. 2015): pixels replaced by a baseline, most salient first.

  Args:
    clf: the Classifier.
    images: f32[B,H,W,3] in [0, 1].
    maps: f32[B,H,W]; only the order of the pixels counts (ties: raster order).
    labels: i32[B], the classes scored; None = the predicted classes.
    key: a PRNG key, needed only for baseline="uniform".
    features_in_step: k, pixels (all 3 channels) replaced per step; Quantus's
      `features_in_step` counts values: 3 k there.
    baseline: what replaced pixels become (module doc), default 0 (black).
    score: "softmax" (the class probability) or "logit".
    auc: "normalised" (trapezoid over t / n in [0, 1], y_0 included) or
      "quantus" (numpy.trapz of y_1..y_n, unit spacing: `return_auc_per_sample`).
    chunk: step images per forward (memory, not the result).
    allow_constant_maps: rank a constant map in raster order instead of raising.

  Returns:
    PixelFlipping: curve f32[B, n + 1] and auc f32[B].
  """
  labels, baseline = _check_common(clf, images, maps, labels, baseline=baseline, key=key,
                                   score=score, chunk=chunk,
                                   allow_constant_maps=allow_constant_maps)
  validation.check_positive_int(features_in_step, "features_in_step")
  _check_choice(auc, "auc", AUCS)
  batch, height, width = maps.shape
  k = min(int(features_in_step), height * width)
  return _pixel_flipping(clf, jnp.asarray(images, jnp.float32), jnp.asarray(maps, jnp.float32),
                         jnp.asarray(labels, jnp.int32), _key(key), features_in_step=k,
                         baseline=baseline, score=score, auc=auc,
                         per_forward=_per_forward(int(chunk), batch))


# ---------------------------------------------------------------- patches


class RegionPerturbation(NamedTuple):
  """Per-image drops and their mean; L = min(regions_evaluation, number of patches)."""

  curve: jax.Array  # f32[B, L + 1], y_0 - y_t (0 at t = 0)
  aopc: jax.Array  # f32[B], higher is better for order="morf", lower for "lerf"


class Selectivity(NamedTuple):
  """Per-image curve and area; P = the number of patches."""

  curve: jax.Array  # f32[B, P + 1], y_t after t patches (y_0: the image)
  auc: jax.Array  # f32[B], lower is better


def _patch_curve(clf, images, maps, labels, key, *, patch_size, descending, num_points,
                 baseline, score, per_forward):
  """f32[B, num_points]: y_t with the patches of rank < t removed."""
  batch, height, width, _ = images.shape
  grid, count = patch_units(height, width, patch_size)
  units = jnp.broadcast_to(jnp.asarray(grid), (batch, height, width))
  ranks = unit_ranks(unit_sums(maps, units, count), descending)
  pixel_rank = jnp.take_along_axis(ranks, units.reshape(batch, -1), axis=1)
  pixel_rank = pixel_rank.reshape(batch, height, width)
  if baseline == "quantus_mean":
    # Quantus takes the mean of the image padded (edge values) to whole patches.
    pad_y, pad_x = (-height) % patch_size, (-width) % patch_size
    padded = jnp.pad(images, ((0, 0), (pad_y // 2, pad_y - pad_y // 2),
                              (pad_x // 2, pad_x - pad_x // 2), (0, 0)), mode="edge")
    rows, cols = np.arange(padded.shape[1]) // patch_size, np.arange(padded.shape[2]) // patch_size
    padded_units = jnp.asarray(rows[:, None] * (padded.shape[2] // patch_size) + cols[None])
    padded_rank = jax.vmap(lambda r: r[padded_units])(ranks)
    base = drifting_mean_baseline(images, pixel_rank, count, padded, padded_rank)
  else:
    base = baselines.baseline_images(images, baseline, key)
  return removal_scores(clf, images, base, pixel_rank, labels,
                        num_points=num_points, units_per_step=1, per_forward=per_forward,
                        score=score)


@functools.partial(jax.jit, static_argnames=("patch_size", "order", "regions", "baseline",
                                             "score", "per_forward"))
def _region_perturbation(clf, images, maps, labels, key, *, patch_size, order, regions,
                         baseline, score, per_forward) -> RegionPerturbation:
  scores = _patch_curve(clf, images, maps, labels, key, patch_size=patch_size,
                        descending=order == "morf", num_points=regions + 1, baseline=baseline,
                        score=score, per_forward=per_forward)
  drops = scores[:, :1] - scores
  return RegionPerturbation(curve=drops, aopc=drops.mean(axis=1))


def _check_patches(maps, patch_size):
  validation.check_positive_int(patch_size, "patch_size")
  _, height, width = maps.shape
  if patch_size > max(height, width):
    raise ValueError(f"patch_size must be at most the image's larger side {max(height, width)},"
                     f" got {patch_size}")
  return patch_units(height, width, int(patch_size))[1]


@takes_compute_dtype
def region_perturbation(clf: Classifier, images: Any, maps: Any, labels: Any = None, *,
                        key: Any = None, patch_size: int = 8, order: str = "morf",
                        regions_evaluation: int = 100, baseline: Any = "black",
                        score: str = "softmax", chunk: int = 256,
                        allow_constant_maps: bool = False) -> RegionPerturbation:
  """Region perturbation and AOPC (Samek et al. 2017): patches removed in attribution order.

  Args:
    clf, images, maps, labels, key, score, chunk, allow_constant_maps: as `pixel_flipping`.
    patch_size: the side of the square patches (grid of the module doc).
    order: "morf" (largest summed attribution first) or "lerf" (smallest first).
    regions_evaluation: the patches removed, L (at most the number of patches).
    baseline: what removed patches become (module doc); the paper used "uniform".

  Returns:
    RegionPerturbation: curve f32[B, L + 1] of drops y_0 - y_t and aopc f32[B].
  """
  labels, baseline = _check_common(clf, images, maps, labels, baseline=baseline, key=key,
                                   score=score, chunk=chunk,
                                   allow_constant_maps=allow_constant_maps)
  count = _check_patches(maps, patch_size)
  validation.check_positive_int(regions_evaluation, "regions_evaluation")
  _check_choice(order, "order", ORDERS)
  return _region_perturbation(
      clf, jnp.asarray(images, jnp.float32), jnp.asarray(maps, jnp.float32),
      jnp.asarray(labels, jnp.int32), _key(key), patch_size=int(patch_size), order=order,
      regions=min(int(regions_evaluation), count), baseline=baseline, score=score,
      per_forward=_per_forward(int(chunk), maps.shape[0]))


@functools.partial(jax.jit, static_argnames=("patch_size", "baseline", "score", "auc",
                                             "per_forward"))
def _selectivity(clf, images, maps, labels, key, *, patch_size, baseline, score, auc,
                 per_forward) -> Selectivity:
  count = patch_units(images.shape[1], images.shape[2], patch_size)[1]
  curve = _patch_curve(clf, images, maps, labels, key, patch_size=patch_size, descending=True,
                       num_points=count + 1, baseline=baseline, score=score,
                       per_forward=per_forward)
  area = trapezoid(curve, count) if auc == "normalised" else _quantus_trapezoid(curve, count)
  return Selectivity(curve=curve, auc=area)


@takes_compute_dtype
def selectivity(clf: Classifier, images: Any, maps: Any, labels: Any = None, *,
                key: Any = None, patch_size: int = 8, baseline: Any = "black",
                score: str = "softmax", auc: str = "normalised", chunk: int = 256,
                allow_constant_maps: bool = False) -> Selectivity:
  """Selectivity (Montavon et al. 2018): all patches removed, largest summed attribution first.

  Args:
    clf, images, maps, labels, key, baseline, score, auc, chunk, allow_constant_maps: as
      `pixel_flipping`.
    patch_size: the side of the square patches (grid of the module doc).

  Returns:
    Selectivity: curve f32[B, P + 1] and auc f32[B].
  """
  labels, baseline = _check_common(clf, images, maps, labels, baseline=baseline, key=key,
                                   score=score, chunk=chunk,
                                   allow_constant_maps=allow_constant_maps)
  _check_patches(maps, patch_size)
  _check_choice(auc, "auc", AUCS)
  return _selectivity(clf, jnp.asarray(images, jnp.float32), jnp.asarray(maps, jnp.float32),
                      jnp.asarray(labels, jnp.int32), _key(key), patch_size=int(patch_size),
                      baseline=baseline, score=score, auc=auc,
                      per_forward=_per_forward(int(chunk), maps.shape[0]))


# ---------------------------------------------------------------- IROF


class Irof(NamedTuple):
  """Per-image normalised curve and area over it; K = the segment label range."""

  curve: jax.Array  # f32[B, K + 1], y_t / y_0 after t segments (flat after num_segments)
  aoc: jax.Array  # f32[B], higher is better
  num_segments: jax.Array  # i32[B], n_b: the non-empty segments of each image


def slic_segments(images: jax.Array, *, num_segments: int = 100, compactness: float = 10.0,
                  sigma: float = 0.0) -> jax.Array:
  """f32[B,H,W,3] -> i32[B,H,W]: `salijax.methods.slic` of every image (IROF's default)."""
  from salijax.methods.slic import slic  # noqa: PLC0415 - methods import metrics elsewhere
  return jax.vmap(functools.partial(slic, num_segments=num_segments, compactness=compactness,
                                    sigma=sigma))(images)


@functools.partial(jax.jit, static_argnames=("num_units", "num_slic", "compactness", "sigma",
                                             "baseline", "score", "aoc", "per_forward"))
def _irof(clf, images, maps, labels, key, segments, *, num_units, num_slic, compactness, sigma,
          baseline, score, aoc, per_forward) -> Irof:
  batch, height, width, _ = images.shape
  if segments is None:
    segments = slic_segments(images, num_segments=num_slic, compactness=compactness,
                             sigma=sigma)
  segments = segments.astype(jnp.int32)
  sizes = unit_sums(jnp.ones_like(maps), segments, num_units)
  means = unit_sums(maps, segments, num_units) / jnp.maximum(sizes, 1.0)
  present = sizes > 0
  ranks = unit_ranks(jnp.where(present, means, -jnp.inf))  # empty segments last
  pixel_rank = jnp.take_along_axis(ranks, segments.reshape(batch, -1), axis=1)
  pixel_rank = pixel_rank.reshape(batch, height, width)
  if baseline == "quantus_mean":
    base = drifting_mean_baseline(images, pixel_rank, num_units)
  else:
    base = baselines.baseline_images(images, baseline, key)
  scores = removal_scores(clf, images, base, pixel_rank, labels,
                          num_points=num_units + 1, units_per_step=1, per_forward=per_forward,
                          score=score)
  ratios = scores / scores[:, :1]
  count = present.sum(axis=1).astype(jnp.int32)
  if aoc == "normalised":
    area = 1.0 - trapezoid(ratios, count)
  else:
    area = count - _quantus_trapezoid(ratios, count)
  return Irof(curve=ratios, aoc=area, num_segments=count)


@takes_compute_dtype
def irof(clf: Classifier, images: Any, maps: Any, labels: Any = None, *, key: Any = None,
         segments: Any = None, num_segments: int = 100, compactness: float = 10.0,
         slic_sigma: float = 0.0, baseline: Any = "mean", score: str = "softmax",
         aoc: str = "normalised", chunk: int = 256,
         allow_constant_maps: bool = False) -> Irof:
  """IROF (Rieger & Hansen 2020): superpixels removed by decreasing mean attribution.

  Args:
    clf, images, maps, labels, key, chunk, allow_constant_maps: as `pixel_flipping`.
    segments: i32[B,H,W] superpixel labels >= 0 (labels holding no pixel are
      absent); None = `slic_segments(images)` with the next three options.
    num_segments, compactness, slic_sigma: SLIC's options (scikit-image's
      defaults, as Quantus calls it).
    baseline: what removed segments become (module doc); default the image's mean.
    score: "softmax" (ratios of probabilities, the paper's); "logit" ratios mean
      something only for positive logits.
    aoc: "normalised" (1 - the trapezoid of y_t / y_0 over t / n_b in [0, 1])
      or "quantus" (n_b - numpy.trapz of y_1 / y_0 .. y_n_b / y_0, unit spacing:
      Quantus's value for a batch of one image).

  Returns:
    Irof: curve f32[B, K + 1], aoc f32[B], num_segments i32[B]. K = max label + 1
    of given segments (H W under a caller's jit), the SLIC grid's size otherwise.
  """
  labels, baseline = _check_common(clf, images, maps, labels, baseline=baseline, key=key,
                                   score=score, chunk=chunk,
                                   allow_constant_maps=allow_constant_maps)
  _check_choice(aoc, "aoc", AUCS)
  batch, height, width = maps.shape
  if segments is None:
    from salijax.methods.slic import slic_grid  # noqa: PLC0415
    validation.check_positive_int(num_segments, "num_segments")
    for value, name in ((compactness, "compactness"), (slic_sigma, "slic_sigma")):
      number = isinstance(value, (int, float, np.integer, np.floating))
      if isinstance(value, bool) or not number or not 0 <= value < math.inf:
        raise ValueError(f"{name} must be a non-negative number, got {value!r}")
    if compactness == 0:
      raise ValueError("compactness must be positive, got 0")
    num_units = slic_grid(height, width, int(num_segments)).size
  else:
    shape, dtype = getattr(segments, "shape", None), getattr(segments, "dtype", None)
    if shape is None or dtype is None:
      raise TypeError(f"segments must be an integer array [B, H, W], got"
                      f" {type(segments).__name__}")
    if tuple(shape) != (batch, height, width):
      raise ValueError(f"segments must have shape [B, H, W] = {(batch, height, width)} like the"
                       f" maps, got {tuple(shape)}")
    if not jnp.issubdtype(dtype, jnp.integer):
      raise TypeError(f"segments must be integer labels, got dtype {dtype}")
    num_units = height * width
    if validation.is_concrete(segments):
      values = np.asarray(segments)
      if values.min() < 0 or values.max() >= height * width:
        raise ValueError(f"segments must be labels in [0, H W) = [0, {height * width}), got"
                         f" values in [{values.min()}, {values.max()}]")
      num_units = int(values.max()) + 1
    segments = jnp.asarray(segments, jnp.int32)
  return _irof(clf, jnp.asarray(images, jnp.float32), jnp.asarray(maps, jnp.float32),
               jnp.asarray(labels, jnp.int32), _key(key), segments, num_units=num_units,
               num_slic=int(num_segments), compactness=float(compactness),
               sigma=float(slic_sigma), baseline=baseline, score=score, aoc=aoc,
               per_forward=_per_forward(int(chunk), batch))
