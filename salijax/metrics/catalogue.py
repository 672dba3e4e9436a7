"""The metric catalogue: what each metric of `salijax.metrics` returns, which way is better, and
what it needs.

    info = catalogue.info("insertion_deletion")
    info.fields["deletion_auc"]         # Field(shape="f32[B]", better="lower")
    info.higher_is_better("insertion_auc")   # True
    info.needs_model, info.needs_region      # True, False
    catalogue.names()                         # every metric, sorted

A metric is a function of `salijax.metrics` returning a NamedTuple of results
per image; `fields` lists that NamedTuple's fields in order, each with its
shape and direction: HIGHER or LOWER, which way a better saliency map moves
the value; None, not a score of the map (a reference value such as the
baseline or the region's area, a tie count, the model's own confidence).
Needs: `needs_model`, it runs the classifier (`clf` first); `needs_region`,
it takes the object's region (masks or boxes); `needs_method`, it takes a
saliency method and explains the images itself. Functions that summarise or
prepare results (`pointing_accuracy`, `summarize_confidence_change`, the
randomisation and similarity helpers) are not metrics. Each metric's
definition is its section of docs/metrics.md, anchored at its name.
"""

import dataclasses
from collections.abc import Mapping
from typing import NamedTuple

HIGHER = "higher"
LOWER = "lower"


class Field(NamedTuple):
  """One result field: its shape ("f32[B]", "bool[B]", ...) and direction (module doc)."""

  shape: str
  better: str | None  # HIGHER, LOWER, or None: not a score of the map


@dataclasses.dataclass(frozen=True)
class MetricInfo:
  """What the catalogue knows of a metric (module doc)."""

  name: str  # the function in salijax.metrics, and its section of docs/metrics.md
  fields: Mapping[str, Field]  # the result NamedTuple's fields, in order
  needs_model: bool = False
  needs_region: bool = False
  needs_method: bool = False

  def higher_is_better(self, field: str) -> bool | None:
    """True / False for a score of the map, None for a field that is not one."""
    better = self.fields[field].better
    return None if better is None else better == HIGHER


_PER_IMAGE = "f32[B]"

_METRICS: dict[str, MetricInfo] = {info.name: info for info in (
    MetricInfo("insertion_deletion", {
        "insertion_curve": Field("f32[B, n + 1]", HIGHER),
        "deletion_curve": Field("f32[B, n + 1]", LOWER),
        "insertion_auc": Field(_PER_IMAGE, HIGHER),
        "deletion_auc": Field(_PER_IMAGE, LOWER)}, needs_model=True),
    MetricInfo("confidence_change", {
        "drop": Field(_PER_IMAGE, LOWER),
        "increase": Field("bool[B]", HIGHER),
        "gain": Field(_PER_IMAGE, HIGHER),
        "score": Field(_PER_IMAGE, None),
        "explanation_score": Field(_PER_IMAGE, HIGHER)}, needs_model=True),
    MetricInfo("pointing_game", {
        "hit": Field("bool[B]", HIGHER),
        "distance": Field(_PER_IMAGE, LOWER),
        "num_maxima": Field("i32[B]", None)}, needs_region=True),
    MetricInfo("energy_pointing_game", {
        "proportion": Field(_PER_IMAGE, HIGHER),
        "region_fraction": Field(_PER_IMAGE, None)}, needs_region=True),
    MetricInfo("localisation", {
        "relevance_rank_accuracy": Field(_PER_IMAGE, HIGHER),
        "relevance_mass_accuracy": Field(_PER_IMAGE, HIGHER),
        "attribution_localisation": Field(_PER_IMAGE, HIGHER),
        "top_k_intersection": Field(_PER_IMAGE, HIGHER),
        "auc": Field(_PER_IMAGE, HIGHER)}, needs_region=True),
    MetricInfo("complexity", {
        "sparseness": Field(_PER_IMAGE, HIGHER),
        "entropy": Field(_PER_IMAGE, LOWER),
        "mass_fraction_90": Field(_PER_IMAGE, LOWER)}),
    MetricInfo("sanity_check", {
        "block_names": Field("str[num_blocks]", None),
        "similarity": Field("{measure: f32[num_blocks, B]}", LOWER),
        "baseline": Field("{measure: f32[B - 1, B]}", None),
        "passed": Field("{measure: bool}", HIGHER)}, needs_model=True, needs_method=True),
    MetricInfo("explanation_robustness", {
        "spearman": Field(_PER_IMAGE, HIGHER),
        "ssim": Field(_PER_IMAGE, HIGHER)}),
    MetricInfo("effective_complexity", {
        "count": Field("i32[B]", LOWER),
        "fraction": Field(_PER_IMAGE, LOWER)}),
    MetricInfo("completeness", {
        "attribution_sum": Field(_PER_IMAGE, None),
        "output_difference": Field(_PER_IMAGE, None),
        "gap": Field(_PER_IMAGE, None),
        "relative_gap": Field(_PER_IMAGE, LOWER),
        "complete": Field("bool[B]", HIGHER)}, needs_model=True),
    MetricInfo("non_sensitivity", {
        "zero_but_sensitive": Field("i32[B]", LOWER),
        "nonzero_but_insensitive": Field("i32[B]", LOWER),
        "violations": Field("i32[B]", LOWER)}, needs_model=True),
    MetricInfo("random_logit", {
        "similarity": Field(_PER_IMAGE, LOWER),
        "other_labels": Field("i32[B]", None)}, needs_model=True, needs_method=True),
    MetricInfo("smooth_mprt", {
        "block_names": Field("str[num_blocks]", None),
        "similarity": Field("{measure: f32[num_blocks, B]}", LOWER),
        "mean_similarity": Field("{measure: f32[B]}", LOWER)}, needs_model=True,
        needs_method=True),
    MetricInfo("efficient_mprt", {
        "original_complexity": Field(_PER_IMAGE, None),
        "randomized_complexity": Field(_PER_IMAGE, None),
        "relative_change": Field(_PER_IMAGE, HIGHER)}, needs_model=True, needs_method=True),
    MetricInfo("input_invariance", {
        "difference": Field(_PER_IMAGE, LOWER),
        "invariant": Field("bool[B]", HIGHER),
        "logit_difference": Field(_PER_IMAGE, None)}, needs_model=True, needs_method=True),
)}


def info(name: str) -> MetricInfo:
  """The catalogue entry of the metric `name`; ValueError listing the names otherwise."""
  if name not in _METRICS:
    raise ValueError(f"unknown metric {name!r}; catalogued: {', '.join(names())}")
  return _METRICS[name]


def names() -> tuple[str, ...]:
  """The catalogued metrics, sorted."""
  return tuple(sorted(_METRICS))
