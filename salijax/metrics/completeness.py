"""Completeness (Sundararajan, Taly, Yan, "Axiomatic Attribution for Deep Networks", ICML 2017).

An attribution map is complete when its values add up to the change of the
model's output between the image I and a baseline image I':

  gap = sum_{h,w} L[h,w] - (f_c(I) - f_c(I'))

with f_c the logit (default; `score="softmax"`: the probability) of the class
c = `labels`. The map is `complete` when |gap| <= atol + rtol |f_c(I) - f_c(I')|,
by default within 5 % of the output difference (rtol = 0.05, atol = 0): the
paper's rule for the number of steps of integrated gradients ("within 5 %").
`relative_gap` = |gap| / |f_c(I) - f_c(I')| (0 when both are 0, inf when only
the difference is). Maps f32[B,H,W] hold each pixel's total over its colour
channels (integrated gradients with reduce="sum").

Baselines (`salijax.metrics.baselines`), in pixel space: "black" (default,
the paper's: every value 0), "white", "min", "mean", "max" (the image's own
minimum, mean or maximum: Quantus's "black", "mean" and "white"), "blur", a
value or 3 channel values in [0, 1], or an image batch f32[B,H,W,3].

Quantus 0.6.0's Completeness returns `sum a == f(I) - f(I')`, exact float
equality (rtol = atol = 0 here), with the logits and the baseline "black", the
image's minimum. It replaces the first prod(a.shape[1:]) of the flattened
C H W values: with a one-channel map f32[B,1,H,W] only the first colour
channel, with a map of every channel f32[B,3,H,W] the whole image.

    result = completeness(clf, images, maps, labels)
    result.gap, result.relative_gap, result.complete     # f32[B], f32[B], bool[B]
"""

import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from salijax import validation
from salijax.classifier import Classifier
from salijax.compute_dtype import takes_compute_dtype
from salijax.metrics import baselines
from salijax.metrics.perturbed_scores import SCORES, class_scores


class Completeness(NamedTuple):
  """Per-image completeness of the maps (see the module doc)."""

  attribution_sum: jax.Array  # f32[B], sum of the map
  output_difference: jax.Array  # f32[B], f_c(I) - f_c(I')
  gap: jax.Array  # f32[B], attribution_sum - output_difference
  relative_gap: jax.Array  # f32[B], |gap| / |output_difference|, lower is better
  complete: jax.Array  # bool[B], |gap| <= atol + rtol |output_difference|


def check_non_negative(value: Any, name: str) -> float:
  """A finite number >= 0 as a float, else ValueError naming `name`."""
  number = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
  if not number or not 0 <= value < math.inf:
    raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
  return float(value)


@functools.partial(jax.jit, static_argnames=("baseline_spec", "score"))
def _completeness(clf: Classifier, images: jax.Array, maps: jax.Array, labels: jax.Array,
                  baseline: jax.Array | None, rtol: jax.Array, atol: jax.Array, *,
                  baseline_spec: Any, score: str) -> Completeness:
  """The jitted metric: f32[B,H,W,3], f32[B,H,W], i32[B] -> Completeness (module doc)."""
  start = baselines.baseline_images(images, baseline_spec if baseline is None else baseline)
  scores = class_scores(clf, jnp.stack([images, start], axis=1), labels, score)  # f32[B,2]
  difference = scores[:, 0] - scores[:, 1]
  total = maps.reshape(maps.shape[0], -1).sum(axis=1)
  gap = total - difference
  size = jnp.abs(difference)
  relative = jnp.where(size > 0, jnp.abs(gap) / jnp.where(size > 0, size, 1.0),
                       jnp.where(gap == 0, 0.0, jnp.inf))
  return Completeness(attribution_sum=total, output_difference=difference, gap=gap,
                      relative_gap=relative, complete=jnp.abs(gap) <= atol + rtol * size)


@takes_compute_dtype
def completeness(clf: Classifier, images: Any, maps: Any, labels: Any = None, *,
                 baseline: Any = "black", score: str = "logit", rtol: float = 0.05,
                 atol: float = 0.0) -> Completeness:
  """Whether each map adds up to f_c(I) - f_c(baseline) (see the module doc).

  Args:
    clf: the Classifier.
    images: f32[B,H,W,3] in [0, 1].
    maps: f32[B,H,W], signed attributions (each pixel's total over its channels).
    labels: i32[B], the class explained; None = the predicted class.
    baseline: a name, a value, 3 channel values or an image batch
      (`salijax.metrics.baselines`; module doc).
    score: "logit" (default) or "softmax".
    rtol, atol: the tolerance of `complete` (>= 0).

  Returns:
    Completeness of per-image arrays.

  Raises:
    ValueError: bad images, maps, labels, baseline, score or tolerances.
    TypeError: wrong types of clf, images, maps, labels or baseline.
  """
  labels = validation.checked_labels(clf, images, labels)
  validation.check_maps(maps, images)
  spec, array = baselines.split(baselines.check_baseline(
      baseline, images, names=baselines.DETERMINISTIC))
  if score not in SCORES:
    raise ValueError(f"score must be one of {list(SCORES)}, got {score!r}")
  rtol, atol = check_non_negative(rtol, "rtol"), check_non_negative(atol, "atol")
  return _completeness(clf, jnp.asarray(images, jnp.float32), jnp.asarray(maps, jnp.float32),
                       jnp.asarray(labels, jnp.int32), array, jnp.float32(rtol),
                       jnp.float32(atol), baseline_spec=spec, score=score)
