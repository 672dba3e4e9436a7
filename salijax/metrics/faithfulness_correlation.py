"""Faithfulness correlation (Bhatt et al. 2020) and faithfulness estimate (Alvarez-Melis 2018).

Both remove sets S_j of pixels (all channels; a removed pixel takes the
`baseline` value), score the copies x_j = where(S_j, baseline, x), and return
per image the Pearson correlation over j of

  sum_{p in S_j} a_p   and   f_c(x) - f_c(x_j),

the attribution of the removed pixels and the drop of the class score
(`score`: the logit by default, as Quantus scores; or the softmax probability).
Higher is better (1: the drops are an affine function of the attributions).

- `faithfulness_correlation` (U. Bhatt, A. Weller, J. M. F. Moura,
  "Evaluating and Aggregating Feature-based Model Explanations", IJCAI 2020,
  arXiv:2005.00631): S_j, j = 1..`num_runs` (100), are uniformly random
  subsets of `subset_size` (224) pixels, drawn from `key`
  (`attribution_groups.random_subsets`: job j's subset).
- `faithfulness_estimate` (D. Alvarez-Melis, T. S. Jaakkola, "Towards Robust
  Interpretability with Self-Explaining Neural Networks", NeurIPS 2018,
  arXiv:1806.07538): S_t, t = 0..n-1, are the pixel groups of `step_pixels`
  (1) pixels in descending attribution order (ties: raster order), each
  removed alone; n = ceil(H W / step_pixels).

Quantus 0.6.0 (`FaithfulnessCorrelation`, `FaithfulnessEstimate`) removes
single channel values: its features are the 3 H W values, its map broadcast to
the channels. `faithfulness_correlation(features="values")` draws subsets of
`subset_size` values as Quantus does (job j's subset: the first
`subset_size` of a random order of the values in (y, x, c) raster order; a
pixel's map value counts once per removed channel). Whole pixels (the default,
as every salijax metric perturbs) are Quantus with `subset_size` and
`features_in_step` 3 times ours and the same pixel sets (its attribution sums
are 3 times ours; Pearson ignores the factor; its argsort keeps a pixel's 3
equal values together when the map's values are distinct). Its "black"
baseline is each image's minimum value: `baseline="min"` here; "black" here
is 0.

    result = faithfulness_correlation(clf, images, maps, key=jax.random.key(0))
    result.correlation                                        # f32[B]
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
from salijax.metrics.perturbed_scores import class_scores, per_forward, perturbed_scores

FEATURES = ("pixels", "values")


class FaithfulnessCorrelation(NamedTuple):
  """Per image: the correlation of removed attribution and score drop over R random subsets."""

  correlation: jax.Array  # f32[B], higher is better
  attribution_sums: jax.Array  # f32[B, R], sum of the map over subset j
  score_drops: jax.Array  # f32[B, R], f_c(x) - f_c(x_j)


class FaithfulnessEstimate(NamedTuple):
  """Per image: the correlation of each group's attribution and its removal's score drop."""

  correlation: jax.Array  # f32[B], higher is better
  attribution_sums: jax.Array  # f32[B, n], sum of the map over group t
  score_drops: jax.Array  # f32[B, n], f_c(x) - f_c(x without group t)


def _removal_drops(clf: Classifier, images: jax.Array, labels: jax.Array,
                   removed, num_jobs: int, baseline: Any, score: str,
                   copies_per_forward: int) -> jax.Array:
  """f32[B, J]: f_c(x) - f_c(x_j), x_j = x with the pixels removed(j) (bool[B,s,H,W]; or
  single values: bool[B,s,H,W,3]) at the baseline."""
  colour = baselines.baseline_images(images, baseline)[:, None]  # f32[B,1,H,W,3]

  def copies(jobs: jax.Array) -> jax.Array:
    mask = removed(jobs)
    return jnp.where(mask if mask.ndim == 5 else mask[..., None], colour, images[:, None])

  scores = perturbed_scores(clf, copies, labels, num_jobs=num_jobs,
                            per_forward=copies_per_forward, score=score)
  return class_scores(clf, images[:, None], labels, score) - scores


@functools.partial(jax.jit, static_argnames=(
    "num_runs", "subset_size", "features", "baseline", "score", "copies_per_forward"))
def _faithfulness_correlation(clf: Classifier, images: jax.Array, maps: jax.Array,
                              labels: jax.Array, key: jax.Array, *, num_runs: int,
                              subset_size: int, features: str, baseline: Any, score: str,
                              copies_per_forward: int) -> FaithfulnessCorrelation:
  batch, height, width = maps.shape
  values = features == "values"
  shape = (batch, height, width * 3) if values else maps.shape
  if values:  # the map's value of a pixel counts once for each of its removed channels
    maps = jnp.broadcast_to(maps[..., None], images.shape)

  def subsets(jobs: jax.Array) -> jax.Array:  # i32[s] -> bool[B,s,H,W] (values: [..., 3])
    chosen = jax.vmap(lambda j: groups_lib.random_subsets(key, j, shape, subset_size),
                      out_axes=1)(jobs)
    return chosen.reshape(batch, -1, *maps.shape[1:])

  drops = _removal_drops(clf, images, labels, subsets, num_runs, baseline, score,
                         copies_per_forward)
  # The attribution sums of the same subsets, R maps at a time would cost R H W memory:
  # one lax.map over the runs keeps it at B H W.
  axes = tuple(range(1, maps.ndim))
  sums = jax.lax.map(lambda j: (maps * subsets(j[None])[:, 0]).sum(axis=axes),
                     jnp.arange(num_runs, dtype=jnp.int32)).T  # f32[B,R]
  return FaithfulnessCorrelation(groups_lib.pearson(sums, drops, x_terms=subset_size), sums,
                                 drops)


@functools.partial(jax.jit, static_argnames=(
    "step_pixels", "baseline", "score", "copies_per_forward"))
def _faithfulness_estimate(clf: Classifier, images: jax.Array, maps: jax.Array,
                           labels: jax.Array, *, step_pixels: int, baseline: Any, score: str,
                           copies_per_forward: int) -> FaithfulnessEstimate:
  _, height, width = maps.shape
  count = groups_lib.num_groups(height, width, step_pixels)
  group = groups_lib.pixel_groups(maps, step_pixels)[:, None]  # i32[B,1,H,W]
  removed = lambda jobs: group == jobs[None, :, None, None]  # noqa: E731
  drops = _removal_drops(clf, images, labels, removed, count, baseline, score,
                         copies_per_forward)
  sums = groups_lib.group_sums(maps, group[:, 0], count)
  return FaithfulnessEstimate(groups_lib.pearson(sums, drops, x_terms=step_pixels), sums, drops)


@takes_compute_dtype
def faithfulness_correlation(clf: Classifier, images: Any, maps: Any, labels: Any = None, *,
                             key: Any = None, num_runs: int = 100, subset_size: int = 224,
                             features: str = "pixels", baseline: Any = "black",
                             score: str = "logit",
                             chunk: int = 256) -> FaithfulnessCorrelation:
  """Faithfulness correlation of saliency maps (Bhatt et al. 2020; module doc).

  Args:
    clf: the Classifier.
    images: f32[B,H,W,3] in [0, 1].
    maps: f32[B,H,W] attributions (their values count, not only their order).
    labels: i32[B] classes scored; None = the predicted classes.
    key: a PRNG key (jax.random.key) drawing the subsets.
    num_runs: R, the random subsets per image.
    subset_size: the pixels (values with features="values") per subset, at most H W (3 H W).
    features: "pixels" (all channels of a pixel together) or "values" (single channel
      values, Quantus's features).
    baseline: "black" (0), "min" (Quantus's "black"), or any other name, value or 3
      channel values of `salijax.metrics.baselines`.
    score: "logit" or "softmax".
    chunk: perturbed images per forward; changes memory and speed, not the result.

  Returns:
    FaithfulnessCorrelation: correlation f32[B]; attribution_sums, score_drops f32[B, R].
  """
  labels = groups_lib.check_inputs(clf, images, maps, labels, score=score, chunk=chunk)
  baseline = baselines.check_baseline(baseline, images, names=baselines.DETERMINISTIC,
                                      arrays=False)
  validation.check_key(key)
  validation.check_positive_int(num_runs, "num_runs")
  if features not in FEATURES:
    raise ValueError(f"features must be one of {list(FEATURES)}, got {features!r}")
  batch, height, width = maps.shape
  if features == "pixels":
    groups_lib.check_at_most(subset_size, height * width, "subset_size", "the pixels H W")
  else:
    groups_lib.check_at_most(subset_size, 3 * height * width, "subset_size",
                             "the values 3 H W")
  return _faithfulness_correlation(
      clf, jnp.asarray(images, jnp.float32), jnp.asarray(maps, jnp.float32),
      jnp.asarray(labels, jnp.int32), key, num_runs=int(num_runs),
      subset_size=int(subset_size), features=features, baseline=baseline, score=score,
      copies_per_forward=per_forward(chunk, batch))


@takes_compute_dtype
def faithfulness_estimate(clf: Classifier, images: Any, maps: Any, labels: Any = None, *,
                          step_pixels: int = 1, baseline: Any = "black", score: str = "logit",
                          chunk: int = 256) -> FaithfulnessEstimate:
  """Faithfulness estimate of saliency maps (Alvarez-Melis and Jaakkola 2018; module doc).

  Args:
    clf: the Classifier.
    images: f32[B,H,W,3] in [0, 1].
    maps: f32[B,H,W] attributions.
    labels: i32[B] classes scored; None = the predicted classes.
    step_pixels: k, the pixels per group (at most H W); n = ceil(H W / k) forwards per image.
    baseline: as faithfulness_correlation's.
    score: "logit" or "softmax".
    chunk: perturbed images per forward; changes memory and speed, not the result.

  Returns:
    FaithfulnessEstimate: correlation f32[B]; attribution_sums, score_drops f32[B, n].
  """
  labels = groups_lib.check_inputs(clf, images, maps, labels, score=score, chunk=chunk)
  baseline = baselines.check_baseline(baseline, images, names=baselines.DETERMINISTIC,
                                      arrays=False)
  batch, height, width = maps.shape
  groups_lib.check_at_most(step_pixels, height * width, "step_pixels", "the pixels H W")
  return _faithfulness_estimate(
      clf, jnp.asarray(images, jnp.float32), jnp.asarray(maps, jnp.float32),
      jnp.asarray(labels, jnp.int32), step_pixels=int(step_pixels), baseline=baseline,
      score=score, copies_per_forward=per_forward(chunk, batch))
