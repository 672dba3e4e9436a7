"""Sensitivity-n (Ancona et al. 2018): do attribution sums of n-subsets track their removal?

A map satisfies sensitivity-n when, for every subset S of n pixels,
sum_{p in S} a_p = f_c(x) - f_c(x_S), x_S = x with the pixels of S (all
channels) at the `baseline`. For each n of a grid `subset_sizes`, S_j,
j = 1..`num_samples` (100), are uniformly random n-subsets (from (key, i S + j)
for grid point i: `attribution_groups.random_subsets`), and the result is, per
image and n, the Pearson correlation over j of the attribution sums and the
score drops: correlation f32[B, N]. Higher is better (1: the drops are an
affine function of the sums; gradient times input of a linear model with the
black baseline reaches it for every n).

M. Ancona, E. Ceolini, C. Oztireli, M. Gross, "Towards Better Understanding of
Gradient-based Attribution Methods for Deep Neural Networks", ICLR 2018,
arXiv:1711.06104. Default grid (`default_subset_sizes`): 10 sizes spaced
geometrically from 1 to 80% of the H W pixels (Quantus's n_max_percentage),
rounded and made distinct.

Scores: `score`, the softmax probability by default (as Quantus scores) or
the logit (the quantity gradient times input explains).

Quantus 0.6.0 (`SensitivityN`) computes something else: it removes the
features (single channel values) cumulatively in descending attribution
order, and for each step correlates, across the images of the first batch,
the attribution of the step's newest group alone with the cumulative score
drop. That is neither per image nor over random subsets, so it is not offered.

    result = sensitivity_n(clf, images, maps, key=jax.random.key(0))
    result.correlation     # f32[B, N], one column per n of default_subset_sizes(H W)
"""

import functools
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from salijax import validation
from salijax.classifier import Classifier
from salijax.compute_dtype import takes_compute_dtype
from salijax.metrics import attribution_groups as groups_lib
from salijax.metrics import baselines
from salijax.metrics.perturbed_scores import class_scores, per_forward, perturbed_scores

N_MAX_FRACTION = 0.8
NUM_SIZES = 10


class SensitivityN(NamedTuple):
  """Per image and subset size n: the correlation of attribution sums and score drops."""

  correlation: jax.Array  # f32[B, N], higher is better; column i: n = subset_sizes[i]


def default_subset_sizes(num_pixels: int) -> tuple[int, ...]:
  """Up to 10 distinct sizes spaced geometrically in [1, 0.8 H W] (module doc)."""
  largest = max(1, int(N_MAX_FRACTION * num_pixels))
  return tuple(sorted({int(round(n)) for n in np.geomspace(1, largest, NUM_SIZES)}))


@functools.partial(jax.jit, static_argnames=(
    "subset_sizes", "num_samples", "baseline", "score", "copies_per_forward"))
def _sensitivity_n(clf: Classifier, images: jax.Array, maps: jax.Array, labels: jax.Array,
                   key: jax.Array, *, subset_sizes: tuple[int, ...], num_samples: int,
                   baseline: Any, score: str, copies_per_forward: int) -> SensitivityN:
  batch = maps.shape[0]
  shape = maps.shape
  sizes = jnp.asarray(subset_sizes, jnp.int32)
  count = len(subset_sizes) * num_samples
  colour = baselines.baseline_images(images, baseline)[:, None]

  def removed(jobs: jax.Array) -> jax.Array:  # i32[s] -> bool[B,s,H,W]
    return jax.vmap(lambda j: groups_lib.random_subsets(key, j, shape, sizes[j // num_samples]),
                    out_axes=1)(jobs)

  scores = perturbed_scores(
      clf, lambda jobs: jnp.where(removed(jobs)[..., None], colour, images[:, None]), labels,
      num_jobs=count, per_forward=copies_per_forward, score=score)
  drops = class_scores(clf, images[:, None], labels, score) - scores
  sums = jax.lax.map(lambda j: (maps * removed(j[None])[:, 0]).sum(axis=(1, 2)),
                     jnp.arange(count, dtype=jnp.int32)).T  # f32[B,J]
  shape_n = (batch * len(subset_sizes), num_samples)
  correlation = groups_lib.pearson(sums.reshape(shape_n), drops.reshape(shape_n),
                                   x_terms=max(subset_sizes))
  return SensitivityN(correlation.reshape(batch, len(subset_sizes)))


@takes_compute_dtype
def sensitivity_n(clf: Classifier, images: Any, maps: Any, labels: Any = None, *,
                  key: Any = None, subset_sizes: Sequence[int] | None = None,
                  num_samples: int = 100, baseline: Any = "black", score: str = "softmax",
                  chunk: int = 256) -> SensitivityN:
  """Sensitivity-n of saliency maps (Ancona et al. 2018; module doc).

  Args:
    clf: the Classifier.
    images: f32[B,H,W,3] in [0, 1].
    maps: f32[B,H,W] attributions.
    labels: i32[B] classes scored; None = the predicted classes.
    key: a PRNG key drawing the subsets.
    subset_sizes: the grid of n (distinct, in [1, H W]); None = `default_subset_sizes`.
    num_samples: S, the random subsets per n; N S forwards per image.
    baseline: "black" (0), "min" (Quantus's "black"), or any other name, value or 3
      channel values of `salijax.metrics.baselines`.
    score: "softmax" or "logit".
    chunk: perturbed images per forward; changes memory and speed, not the result.

  Returns:
    SensitivityN: correlation f32[B, N], column i for n = subset_sizes[i].
  """
  labels = groups_lib.check_inputs(clf, images, maps, labels, score=score, chunk=chunk)
  baseline = baselines.check_baseline(baseline, images, names=baselines.DETERMINISTIC,
                                      arrays=False)
  validation.check_key(key)
  validation.check_positive_int(num_samples, "num_samples")
  batch, height, width = maps.shape
  if subset_sizes is None:
    subset_sizes = default_subset_sizes(height * width)
  if isinstance(subset_sizes, (str, bytes)) or not hasattr(subset_sizes, "__len__") or not len(
      subset_sizes):
    raise ValueError(f"subset_sizes must be a non-empty sequence of sizes, got {subset_sizes!r}")
  for n in subset_sizes:
    groups_lib.check_at_most(n, height * width, "subset_sizes", "the pixels H W")
  if len(set(subset_sizes)) != len(subset_sizes):
    raise ValueError(f"subset_sizes must be distinct, got {list(subset_sizes)}")
  return _sensitivity_n(
      clf, jnp.asarray(images, jnp.float32), jnp.asarray(maps, jnp.float32),
      jnp.asarray(labels, jnp.int32), key, subset_sizes=tuple(int(n) for n in subset_sizes),
      num_samples=int(num_samples), baseline=baseline, score=score,
      copies_per_forward=per_forward(chunk, batch))
