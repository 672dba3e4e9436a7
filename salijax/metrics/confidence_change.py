"""Average Drop, Increase in Confidence and Average Gain (Grad-CAM++, Score-CAM papers).

The explanation image keeps each pixel in proportion to its saliency,
E = L01 * I, with L01 the map min-max normalised to [0, 1] per image (a
constant map, which has no range, counts as 1 everywhere: E = I). With
Y = f_c(I) and O = f_c(E), softmax probabilities of the class c = `labels`:

  drop = max(0, Y - O) / Y,   increase = 1[O > Y],   gain = max(0, O - Y) / (1 - Y)

per image (drop = 0 where Y = 0 and gain = 0 where Y = 1: their numerators
are 0 there). Average Drop = 100 mean(drop), Increase in Confidence =
100 mean(increase), Average Gain = 100 mean(gain): `summarize_confidence_change`.

    result = confidence_change(clf, images, maps, labels)
    summarize_confidence_change(result, valid)   # {"average_drop": ..., ...}
"""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from salijax import validation
from salijax.classifier import Classifier
from salijax.compute_dtype import takes_compute_dtype


class ConfidenceChange(NamedTuple):
  """Per-image results (see the module doc)."""

  drop: jax.Array  # f32[B], max(0, Y - O) / Y
  increase: jax.Array  # bool[B], O > Y
  gain: jax.Array  # f32[B], max(0, O - Y) / (1 - Y)
  score: jax.Array  # f32[B], Y = f_c(I)
  explanation_score: jax.Array  # f32[B], O = f_c(E)


def explanation_images(images: jax.Array, maps: jax.Array) -> jax.Array:
  """f32[B,H,W,3], f32[B,H,W] -> E = L01 * I f32[B,H,W,3] (constant maps: L01 = 1)."""
  low = maps.min(axis=(1, 2), keepdims=True)
  span = maps.max(axis=(1, 2), keepdims=True) - low
  unit = jnp.where(span > 0, (maps - low) / jnp.where(span > 0, span, 1.0), 1.0)
  return unit[..., None] * images


def _ratio(numerator: jax.Array, denominator: jax.Array) -> jax.Array:
  """numerator / denominator, 0 where the denominator is 0 (the numerator is 0 there)."""
  safe = jnp.where(denominator > 0, denominator, 1.0)
  return jnp.where(denominator > 0, numerator / safe, 0.0)


@jax.jit
def _confidence_change(clf: Classifier, images: jax.Array, maps: jax.Array,
                       labels: jax.Array) -> ConfidenceChange:
  """The jitted metric (module doc): one forward of the 2B images [I; E]."""
  batch = images.shape[0]
  both = jnp.concatenate([images, explanation_images(images, maps)])
  probs = jax.nn.softmax(clf.logits(both), axis=-1)
  scores = jnp.take_along_axis(probs, jnp.tile(labels, 2)[:, None], axis=1)[:, 0]
  clean, explained = scores[:batch], scores[batch:]
  return ConfidenceChange(
      drop=_ratio(jnp.maximum(0.0, clean - explained), clean),
      increase=explained > clean,
      gain=_ratio(jnp.maximum(0.0, explained - clean), 1.0 - clean),
      score=clean, explanation_score=explained)


@takes_compute_dtype
def confidence_change(clf: Classifier, images: Any, maps: Any,
                      labels: Any = None) -> ConfidenceChange:
  """Per-image drop, increase and gain of the class score (see the module doc).

  Args:
    clf: the Classifier; only `clf.apply` is used.
    images: f32[B,H,W,3] in [0, 1].
    maps: f32[B,H,W], larger = more salient; any real values (min-max normalised).
    labels: i32[B], the class scored for each image (e.g. the ground truth);
      None = the predicted class.

  Returns:
    ConfidenceChange of f32[B] (bool[B] `increase`).

  Raises:
    ValueError: bad images, maps (shape, non-finite) or labels.
    TypeError: wrong types of clf, images, maps or labels.
  """
  labels = validation.checked_labels(clf, images, labels)
  validation.check_maps(maps, images)
  return _confidence_change(clf, jnp.asarray(images, jnp.float32),
                            jnp.asarray(maps, jnp.float32), jnp.asarray(labels, jnp.int32))


def summarize_confidence_change(result: ConfidenceChange,
                                valid: Any = None) -> dict[str, float]:
  """The averages over the valid images, in percent.

  Args:
    result: a ConfidenceChange of B images.
    valid: bool[B], which images count (False for the padding of a last
      batch); None counts every image.

  Returns:
    {"average_drop": 100 mean(drop), "increase_in_confidence": 100 mean(increase),
     "average_gain": 100 mean(gain)} over the valid images.
  """
  batch = np.shape(result.drop)[0]
  if valid is None:
    valid = np.ones(batch, bool)
  valid = np.asarray(valid)
  if valid.shape != (batch,) or valid.dtype != bool:
    raise ValueError(f"valid must be bool[{batch}], got {valid.dtype}{list(valid.shape)}")
  if not valid.any():
    raise ValueError("valid must mark at least one image, got none")

  def percent(values: jax.Array) -> float:
    return float(100.0 * np.asarray(values, np.float64)[valid].mean())

  return {"average_drop": percent(result.drop),
          "increase_in_confidence": percent(result.increase),
          "average_gain": percent(result.gain)}
