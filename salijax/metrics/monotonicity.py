"""Monotonicity (Arya et al. 2019) and monotonicity correlation (Nguyen and Martinez 2020).

Pixel groups G_0..G_{n-1} of `step_pixels` (k) pixels each (all channels)
in ascending attribution order (the least salient first; ties: raster order),
n = ceil(H W / k).

- `monotonicity` (V. Arya et al., "One Explanation Does Not Fit All: A
  Toolkit and Taxonomy of AI Explainability Techniques", arXiv:1909.03012,
  2019): starting from the `baseline` image, the groups are added (set to the
  image's values) one by one: x_t = where(pixel in G_0..G_t, x, baseline),
  curve_t = f_c(x_t), t = 0..n-1. `monotonic` = curve_{t+1} >= curve_t for
  every t (more important features add more); `increasing_fraction` = the
  fraction of the n - 1 steps that do not decrease (1 when n = 1).
- `monotonicity_correlation` (A. Nguyen, M. R. Martinez, "On Quantitative
  Aspects of Model Interpretability", arXiv:2007.07584, 2020): each group in
  turn is replaced by `num_samples` (S) random values u ~ U(0, 1) (one value
  for all its pixels and channels per sample, drawn from (key, t S + s));
  v_t = mean_s (f_c(x_{t,s}) - f_c(x))^2; the result is Spearman's rank
  correlation (average ranks) of the groups' attribution sums (of |a| with
  `absolute`, the default) and v_t. Higher is better: more important groups
  move the score more.

Scores: `score`, the softmax probability by default (as the papers and
Quantus score) or the logit.

Quantus 0.6.0: `Monotonicity` builds x_t by replacing pixels of the baseline
image with its "black" value (the image minimum) again, so its curve is
constant and every map is monotonic; with a perturb_func that inserts the
image's values (as the paper does) it computes `monotonic` here with
`baseline="min"`. `MonotonicityCorrelation` divides v_t by f_c(x)^2 (a
positive per-image factor: the rank correlation is unchanged) and draws u per
image exactly as here. Both take single channel values as features:
features_in_step = 3 k here (module doc of `faithfulness_correlation`).

    result = monotonicity(clf, images, maps, step_pixels=224)
    result.monotonic, result.increasing_fraction               # bool[B], f32[B]
"""

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from salijax import validation
from salijax.classifier import Classifier
from salijax.compute_dtype import takes_compute_dtype
from salijax.metrics import attribution_groups as groups_lib
from salijax.metrics import baselines
from salijax.metrics.per_image_draws import per_image
from salijax.metrics.perturbed_scores import class_scores, per_forward, perturbed_scores


class Monotonicity(NamedTuple):
  """Per image: whether adding ever more important pixel groups never lowers the score."""

  monotonic: jax.Array  # bool[B], higher (True) is better
  increasing_fraction: jax.Array  # f32[B], the steps that do not lower the score
  curve: jax.Array  # f32[B, n], f_c(x_t)


class MonotonicityCorrelation(NamedTuple):
  """Per image: the rank correlation of group attribution and the score's response."""

  correlation: jax.Array  # f32[B], higher is better
  attribution_sums: jax.Array  # f32[B, n], sum of the map (|map| with absolute) over G_t
  variances: jax.Array  # f32[B, n], v_t


def uniform_values(key: jax.Array, job: jax.Array, batch: int) -> jax.Array:
  """f32[B]: the value u ~ U(0, 1) of job j = t S + s (group t, sample s) in every image."""
  return per_image(jax.random.fold_in(key, job), batch, lambda k: jax.random.uniform(k, ()))


@functools.partial(jax.jit, static_argnames=(
    "step_pixels", "baseline", "score", "copies_per_forward"))
def _monotonicity(clf: Classifier, images: jax.Array, maps: jax.Array, labels: jax.Array, *,
                  step_pixels: int, baseline: Any, score: str,
                  copies_per_forward: int) -> Monotonicity:
  _, height, width = maps.shape
  count = groups_lib.num_groups(height, width, step_pixels)
  group = groups_lib.pixel_groups(maps, step_pixels, ascending=True)[:, None, ..., None]
  colour = baselines.baseline_images(images, baseline)[:, None]

  def copies(jobs: jax.Array) -> jax.Array:
    added = group <= jobs[None, :, None, None, None]
    return jnp.where(added, images[:, None], colour)

  curve = perturbed_scores(clf, copies, labels, num_jobs=count,
                           per_forward=copies_per_forward, score=score)
  rises = jnp.diff(curve, axis=1) >= 0
  fraction = rises.mean(axis=1) if count > 1 else jnp.ones(curve.shape[0], jnp.float32)
  return Monotonicity(rises.all(axis=1), fraction.astype(jnp.float32), curve)


@functools.partial(jax.jit, static_argnames=(
    "num_samples", "step_pixels", "absolute", "score", "copies_per_forward"))
def _monotonicity_correlation(clf: Classifier, images: jax.Array, maps: jax.Array,
                              labels: jax.Array, key: jax.Array, *, num_samples: int,
                              step_pixels: int, absolute: bool, score: str,
                              copies_per_forward: int) -> MonotonicityCorrelation:
  batch, height, width = maps.shape
  count = groups_lib.num_groups(height, width, step_pixels)
  values = jnp.abs(maps) if absolute else maps
  group = groups_lib.pixel_groups(values, step_pixels, ascending=True)

  def copies(jobs: jax.Array) -> jax.Array:
    u = jax.vmap(lambda j: uniform_values(key, j, batch), out_axes=1)(jobs)  # f32[B,s]
    replaced = group[:, None] == (jobs // num_samples)[None, :, None, None]
    return jnp.where(replaced[..., None], u[:, :, None, None, None], images[:, None])

  scores = perturbed_scores(clf, copies, labels, num_jobs=count * num_samples,
                            per_forward=copies_per_forward, score=score)
  change = scores.reshape(batch, count, num_samples) - class_scores(
      clf, images[:, None], labels, score)[:, :, None]
  variances = (change * change).mean(axis=2)
  sums = groups_lib.group_sums(values, group, count)
  return MonotonicityCorrelation(groups_lib.spearman(sums, variances, x_terms=step_pixels), sums,
                                 variances)


@takes_compute_dtype
def monotonicity(clf: Classifier, images: Any, maps: Any, labels: Any = None, *,
                 step_pixels: int = 1, baseline: Any = "black", score: str = "softmax",
                 chunk: int = 256) -> Monotonicity:
  """Monotonicity of saliency maps (Arya et al. 2019; module doc).

  Args:
    clf: the Classifier.
    images: f32[B,H,W,3] in [0, 1].
    maps: f32[B,H,W] attributions; only their order counts.
    labels: i32[B] classes scored; None = the predicted classes.
    step_pixels: k, the pixels per group; n = ceil(H W / k) forwards per image.
    baseline: the image the groups are added to: "black" (0), "min" (Quantus's "black"), or
      any other name, value or 3 channel values of `salijax.metrics.baselines`.
    score: "softmax" (the class probability) or "logit".
    chunk: perturbed images per forward; changes memory and speed, not the result.

  Returns:
    Monotonicity: monotonic bool[B], increasing_fraction f32[B], curve f32[B, n].
  """
  labels = groups_lib.check_inputs(clf, images, maps, labels, score=score, chunk=chunk)
  baseline = baselines.check_baseline(baseline, images, names=baselines.DETERMINISTIC,
                                      arrays=False)
  batch, height, width = maps.shape
  groups_lib.check_at_most(step_pixels, height * width, "step_pixels", "the pixels H W")
  return _monotonicity(
      clf, jnp.asarray(images, jnp.float32), jnp.asarray(maps, jnp.float32),
      jnp.asarray(labels, jnp.int32), step_pixels=int(step_pixels), baseline=baseline,
      score=score, copies_per_forward=per_forward(chunk, batch))


@takes_compute_dtype
def monotonicity_correlation(clf: Classifier, images: Any, maps: Any, labels: Any = None, *,
                             key: Any = None, num_samples: int = 100, step_pixels: int = 1,
                             absolute: bool = True, score: str = "softmax",
                             chunk: int = 256) -> MonotonicityCorrelation:
  """Monotonicity correlation of saliency maps (Nguyen and Martinez 2020; module doc).

  Args:
    clf: the Classifier.
    images: f32[B,H,W,3] in [0, 1].
    maps: f32[B,H,W] attributions.
    labels: i32[B] classes scored; None = the predicted classes.
    key: a PRNG key drawing the replacement values.
    num_samples: S, the random replacements of each group.
    step_pixels: k, the pixels per group; n S forwards per image, n = ceil(H W / k).
    absolute: rank and sum |maps| (the paper; Quantus's abs=True) instead of the maps.
    score: "softmax" (the class probability) or "logit".
    chunk: perturbed images per forward; changes memory and speed, not the result.

  Returns:
    MonotonicityCorrelation: correlation f32[B]; attribution_sums, variances f32[B, n].
  """
  labels = groups_lib.check_inputs(clf, images, maps, labels, score=score, chunk=chunk)
  validation.check_key(key)
  validation.check_positive_int(num_samples, "num_samples")
  if not isinstance(absolute, bool):
    raise TypeError(f"absolute must be a bool, got {absolute!r}")
  batch, height, width = maps.shape
  groups_lib.check_at_most(step_pixels, height * width, "step_pixels", "the pixels H W")
  return _monotonicity_correlation(
      clf, jnp.asarray(images, jnp.float32), jnp.asarray(maps, jnp.float32),
      jnp.asarray(labels, jnp.int32), key, num_samples=int(num_samples),
      step_pixels=int(step_pixels), absolute=absolute, score=score,
      copies_per_forward=per_forward(chunk, batch))
