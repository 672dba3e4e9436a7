"""Non-sensitivity (Nguyen and Martinez, "On quantitative aspects of model interpretability",
arXiv:2007.07584, 2020): zero attribution exactly where the model does not react.

Each feature i (a pixel, all its colour channels; or, with unit="channel", one
colour value of one pixel) is replaced by the baseline (`salijax.metrics.
baselines`, "black" = 0 by default), one at a time, and the
class score f_c (the softmax probability by default) is compared with the image's:

  zero_i      = |L_i| < eps            (|L_i| / max |L| < eps with normalise=True)
  sensitive_i = |f_c(I with i replaced) - f_c(I)| >= output_eps   (eps by default)

  zero_but_sensitive      = #{i: zero_i and sensitive_i}       (lower is better)
  nonzero_but_insensitive = #{i: not zero_i and not sensitive_i}
  violations              = their sum, the size of the symmetric difference of
                            the zero-attribution and the insensitive features.

With unit="channel" the features are the 3 H W values in Quantus's order
(channel-major, C H W) and each takes its pixel's map value. Defaults: eps =
output_eps = 1e-5, baseline "black", unit "pixel", probabilities (Quantus's
default; score="logit" for the logits).

Quantus 0.6.0's NonSensitivity returns `violations` with unit="channel", the
same eps for both thresholds, baseline "black" = the image's minimum ("min"
here), the attributions made absolute and, by default, divided by the maximum
|a| of the whole batch (normalise=True here divides by each map's own).

Each image needs J = H W (3 H W) forwards of one-feature copies, scored in
chunks (`salijax.metrics.perturbed_scores`): memory grows with `chunk`, not J.

    result = non_sensitivity(clf, images, maps, labels)
    result.zero_but_sensitive, result.violations      # i32[B]
"""

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from salijax import validation
from salijax.classifier import Classifier
from salijax.compute_dtype import takes_compute_dtype
from salijax.metrics import baselines
from salijax.metrics.completeness import check_non_negative
from salijax.metrics.perturbed_scores import SCORES, class_scores, per_forward, perturbed_scores

UNITS = ("pixel", "channel")


class NonSensitivity(NamedTuple):
  """Per-image counts of features (see the module doc)."""

  zero_but_sensitive: jax.Array  # i32[B], zero attribution, the output changes
  nonzero_but_insensitive: jax.Array  # i32[B], non-zero attribution, the output stays
  violations: jax.Array  # i32[B], the sum of both


@functools.partial(jax.jit, static_argnames=("baseline_spec", "unit", "normalise", "score",
                                             "copies_per_forward"))
def _non_sensitivity(clf: Classifier, images: jax.Array, maps: jax.Array, labels: jax.Array,
                     baseline: jax.Array | None, eps: jax.Array, output_eps: jax.Array, *,
                     baseline_spec: Any, unit: str, normalise: bool, score: str,
                     copies_per_forward: int) -> NonSensitivity:
  """The jitted metric: f32[B,H,W,3], f32[B,H,W], i32[B] -> NonSensitivity (module doc)."""
  batch, height, width, _ = images.shape
  pixels = height * width
  replaced = baselines.baseline_images(images, baseline_spec if baseline is None else baseline)
  image, start = images[:, None], replaced[:, None]  # f32[B,1,H,W,3]
  channels = jnp.arange(3)

  def copies(jobs: jax.Array) -> jax.Array:
    """i32[s] feature indices -> f32[B,s,H,W,3], each with that feature replaced."""
    channel, pixel = jnp.divmod(jobs, pixels)
    at_pixel = (jnp.arange(pixels) == pixel[:, None]).reshape(-1, height, width, 1)
    if unit == "channel":
      at_pixel = at_pixel & (channels == channel[:, None, None, None])
    return jnp.where(at_pixel[None], start, image)

  features = pixels * (3 if unit == "channel" else 1)
  scores = perturbed_scores(clf, copies, labels, num_jobs=features,
                            per_forward=copies_per_forward, score=score)  # f32[B,J]
  original = class_scores(clf, image, labels, score)  # f32[B,1]
  sensitive = jnp.abs(scores - original) >= output_eps
  magnitudes = jnp.abs(maps.reshape(batch, pixels))
  if normalise:
    top = magnitudes.max(axis=1, keepdims=True)
    magnitudes = magnitudes / jnp.where(top > 0, top, 1.0)
  zero = magnitudes < eps
  if unit == "channel":
    zero = jnp.tile(zero, (1, 3))  # feature c H W + p takes pixel p's value
  zero_but_sensitive = (zero & sensitive).sum(axis=1).astype(jnp.int32)
  nonzero_but_insensitive = (~zero & ~sensitive).sum(axis=1).astype(jnp.int32)
  return NonSensitivity(zero_but_sensitive=zero_but_sensitive,
                        nonzero_but_insensitive=nonzero_but_insensitive,
                        violations=zero_but_sensitive + nonzero_but_insensitive)


@takes_compute_dtype
def non_sensitivity(clf: Classifier, images: Any, maps: Any, labels: Any = None, *,
                    eps: float = 1e-5, output_eps: float | None = None,
                    normalise: bool = False, baseline: Any = "black", unit: str = "pixel",
                    score: str = "softmax", chunk: int = 256) -> NonSensitivity:
  """Counts the features whose zero attribution disagrees with the model (module doc).

  Args:
    clf: the Classifier.
    images: f32[B,H,W,3] in [0, 1].
    maps: f32[B,H,W] (absolute values are used).
    labels: i32[B], the class scored; None = the predicted class.
    eps: the attribution threshold (>= 0): |L| < eps is zero.
    output_eps: the output threshold (>= 0); None = eps.
    normalise: compare |L| / max |L| (each map's maximum) with eps.
    baseline: what a replaced feature becomes: "black", "min", "mean", "max",
      a number in [0, 1] or an array f32[B,H,W,3] (`salijax.metrics.baselines`).
    unit: "pixel" (all channels of a pixel at once) or "channel" (Quantus's).
    score: "softmax" (default) or "logit".
    chunk: copies per forward (max(1, chunk // B) of each image); changes
      memory and speed, not the result.

  Returns:
    NonSensitivity of i32[B] counts.

  Raises:
    ValueError: bad images, maps, labels, thresholds, baseline, unit, score or chunk.
    TypeError: wrong types of clf, images, maps, labels, baseline or normalise.
  """
  labels = validation.checked_labels(clf, images, labels)
  validation.check_maps(maps, images)
  eps = check_non_negative(eps, "eps")
  output_eps = eps if output_eps is None else check_non_negative(output_eps, "output_eps")
  if not isinstance(normalise, bool):
    raise TypeError(f"normalise must be a bool, got {normalise!r}")
  spec, array = baselines.split(baselines.check_baseline(
      baseline, images, names=baselines.DETERMINISTIC))
  if unit not in UNITS:
    raise ValueError(f"unit must be one of {list(UNITS)}, got {unit!r}")
  if score not in SCORES:
    raise ValueError(f"score must be one of {list(SCORES)}, got {score!r}")
  validation.check_positive_int(chunk, "chunk")
  return _non_sensitivity(
      clf, jnp.asarray(images, jnp.float32), jnp.asarray(maps, jnp.float32),
      jnp.asarray(labels, jnp.int32), array, jnp.float32(eps),
      jnp.float32(output_eps), baseline_spec=spec, unit=unit,
      normalise=normalise, score=score,
      copies_per_forward=per_forward(int(chunk), images.shape[0]))
