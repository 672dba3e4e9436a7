"""Localisation of saliency maps in the object's region: Quantus's localisation family.

Each field scores a map a f32[n] (n = H W pixels) against the region's mask
s bool[n] (|s| = K pixels, at least one), as Quantus 0.6.0 computes it
(`quantus.metrics.localisation`, normalise=False):

  relevance_rank_accuracy   the share of the K highest-ranked pixels inside s
                            (Arras et al., 2022).
  relevance_mass_accuracy   sum of a inside s / sum of a (Arras et al., 2022);
                            NaN for a map summing to 0, as in Quantus.
  attribution_localisation  sum of a+ inside s / (sum of a+ + 1e-9), a+ = |a|
                            (`attribution="abs"`, Quantus's default abs=True) or
                            max(a, 0) (`"positive"`, Quantus's abs=False,
                            positive_attributions=True); `weighted=True`
                            multiplies it by K / n (Kohlbrenner et al., 2020).
  top_k_intersection        the share of the k highest-ranked pixels inside s
                            (Theiner et al., 2021; k = `k`, by default Quantus's
                            1000, or n for a smaller image, where Quantus
                            raises); `concept_influence=True` multiplies it by n / K.
  auc                       the ROC AUC of a as a score for s (Fawcett, 2006):
                            the probability that a pixel of s scores above one
                            outside, ties counting 1/2 (sklearn's roc_curve and
                            auc, which Quantus calls); NaN when s is the whole image.

`absolute=True` scores |a| in the rank, mass, top-k and AUC fields (Quantus's
abs=True; its default there is False).

Ties in the rankings: `ties="expected"` (default) counts the expectation over
a uniformly random order of tied pixels, so a pixel tied at the K-th value
counts (K - #above) / #tied, independent of the pixel order; `ties="first"`
takes tied pixels in raster order (y W + x), which is Quantus's np.argsort on
maps without ties (np.argsort's order of ties is unspecified).

    result = localisation(maps, masks)   # .relevance_rank_accuracy, ..., .auc: f32[B]
"""

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from salijax import validation
from salijax.metrics.pointing_game import region_masks

DEFAULT_K = 1000  # top_k_intersection's k (Quantus's default), at most H W
EPSILON = 1e-9  # Quantus's AttributionLocalisation denominator offset
TIES = ("expected", "first")
ATTRIBUTIONS = ("abs", "positive")


class Localisation(NamedTuple):
  """Per-image localisation scores (see the module doc); higher is better for all."""

  relevance_rank_accuracy: jax.Array  # f32[B], share of the top-K pixels in the region
  relevance_mass_accuracy: jax.Array  # f32[B], map sum in the region / map sum
  attribution_localisation: jax.Array  # f32[B], |a| (or a+) in the region / total
  top_k_intersection: jax.Array  # f32[B], share of the top-k pixels in the region
  auc: jax.Array  # f32[B], ROC AUC of the map as a score for the region


def _top_share(values: jax.Array, masks: jax.Array, count: jax.Array, ties: str) -> jax.Array:
  """Hits of the `count` (i32[B], 1..n) highest values in masks, f32[B] (not yet divided)."""
  n = values.shape[1]
  if ties == "first":
    order = jnp.broadcast_to(jnp.arange(n, dtype=jnp.int32), values.shape)
    _, _, sorted_masks = jax.lax.sort((-values, order, masks.astype(jnp.int32)),
                                      dimension=1, num_keys=2)
    held = jnp.cumsum(sorted_masks, axis=1)
    return jnp.take_along_axis(held, count[:, None] - 1, axis=1)[:, 0].astype(jnp.float32)
  ascending = jnp.sort(values, axis=1)
  threshold = jnp.take_along_axis(ascending, (n - count)[:, None], axis=1)  # the count-th largest
  above = values > threshold
  tied = values == threshold
  above_count = above.sum(axis=1)
  inside_above = (above & masks).sum(axis=1).astype(jnp.float32)
  inside_tied = (tied & masks).sum(axis=1).astype(jnp.float32)
  # needed * inside_tied is an exact integer: one rounding, none when tied divides it.
  needed = (count - above_count).astype(jnp.float32)
  return inside_above + needed * inside_tied / tied.sum(axis=1).astype(jnp.float32)


def _roc_auc(values: jax.Array, masks: jax.Array) -> jax.Array:
  """ROC AUC of values f32[B,n] as scores for masks bool[B,n], ties 1/2; NaN without negatives."""
  negatives = jnp.sort(jnp.where(masks, jnp.inf, values), axis=1)  # region pixels sort last
  search = jax.vmap(jnp.searchsorted, in_axes=(0, 0, None))
  below = search(negatives, values, "left")  # negatives < value (finite values)
  at_or_below = search(negatives, values, "right")  # negatives <= value
  num_neg = (~masks).sum(axis=1).astype(jnp.float32)
  num_pos = masks.sum(axis=1).astype(jnp.float32)
  twice_wins = jnp.where(masks, (below + at_or_below).astype(jnp.float32), 0.0).sum(axis=1)
  auc = twice_wins / (2.0 * num_neg * num_pos)
  return jnp.where(num_neg > 0, auc, jnp.nan)


@functools.partial(jax.jit, static_argnames=("k", "ties", "attribution", "weighted",
                                             "concept_influence", "absolute"))
def _localisation(maps: jax.Array, masks: jax.Array, *, k: int, ties: str, attribution: str,
                  weighted: bool, concept_influence: bool, absolute: bool) -> Localisation:
  """The jitted metric: f32[B,H,W], bool[B,H,W] -> Localisation (module doc)."""
  batch = maps.shape[0]
  raw = maps.reshape(batch, -1) + 0.0  # + 0.0: -0.0 becomes 0.0, one value for sorting
  masks = masks.reshape(batch, -1)
  n = raw.shape[1]
  values = jnp.abs(raw) if absolute else raw
  region = masks.sum(axis=1)
  region_f = region.astype(jnp.float32)
  rank = _top_share(values, masks, region, ties) / region_f
  mass = jnp.where(masks, values, 0.0).sum(axis=1) / values.sum(axis=1)
  positive = jnp.abs(raw) if attribution == "abs" else jnp.maximum(raw, 0.0)
  located = (jnp.where(masks, positive, 0.0).sum(axis=1)
             / (positive.sum(axis=1) + jnp.float32(EPSILON)))
  if weighted:
    located = located * (region_f / n)
  top_k = _top_share(values, masks, jnp.full((batch,), k, jnp.int32), ties) / k
  if concept_influence:
    top_k = top_k * (n / region_f)
  return Localisation(relevance_rank_accuracy=rank, relevance_mass_accuracy=mass,
                      attribution_localisation=located, top_k_intersection=top_k,
                      auc=_roc_auc(values, masks))


def localisation(maps: Any, region: Any, *, k: int | None = None, ties: str = "expected",
                 attribution: str = "abs", weighted: bool = False,
                 concept_influence: bool = False, absolute: bool = False) -> Localisation:
  """Quantus's localisation metrics of each map in the region (module doc).

  Args:
    maps: f32[B,H,W], larger = more salient; any real values.
    region: the labelled object, a mask bool[B,H,W] or boxes f32[B,4] as for
      `pointing_game`; at least one pixel per image.
    k: top_k_intersection's number of pixels, 1 <= k <= H W; None = min(1000, H W).
    ties: "expected" or "first" (module doc).
    attribution: attribution_localisation's a+, "abs" or "positive".
    weighted: multiply attribution_localisation by the region's share K / n.
    concept_influence: multiply top_k_intersection by n / K.
    absolute: score |maps| in the rank, mass, top-k and AUC fields.

  Returns:
    Localisation of f32[B].

  Raises:
    ValueError: maps not [B,H,W] or non-finite; a bad region (as `pointing_game`),
      k or option.
    TypeError: non-array maps or region, wrong dtypes.
  """
  shape = validation.check_map_batch(maps)
  masks = region_masks(region, shape)
  n = shape[1] * shape[2]
  k = min(DEFAULT_K, n) if k is None else k
  if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= n:
    raise ValueError(f"k must be an integer in [1, H W = {n}], got {k!r}")
  if ties not in TIES:
    raise ValueError(f"ties must be one of {TIES}, got {ties!r}")
  if attribution not in ATTRIBUTIONS:
    raise ValueError(f"attribution must be one of {ATTRIBUTIONS}, got {attribution!r}")
  for name, flag in (("weighted", weighted), ("concept_influence", concept_influence),
                     ("absolute", absolute)):
    if not isinstance(flag, (bool, np.bool_)):
      raise TypeError(f"{name} must be a bool, got {flag!r}")
  return _localisation(jnp.asarray(maps, jnp.float32), masks, k=int(k), ties=ties,
                       attribution=attribution, weighted=bool(weighted),
                       concept_influence=bool(concept_influence), absolute=bool(absolute))
