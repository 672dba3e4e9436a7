"""The metric catalogue: what each metric of `salijax.metrics` returns, which way is better, and
what it needs.

    info = catalogue.info("insertion_deletion")
    info.fields["deletion_auc"]         # Field(shape="f32[B]", better="lower")
    info.higher_is_better("insertion_auc")   # True
    info.needs_model, info.needs_region      # True, False
    info.kind                                 # "model": how to call it (below)
    catalogue.names()                         # every metric, sorted

A metric is a function of `salijax.metrics` returning a NamedTuple of results
per image; `fields` lists that NamedTuple's fields in order, each with its
shape and direction: HIGHER or LOWER, which way a better saliency map moves
the value; None, not a score of the map (a reference value such as the
baseline or the region's area, a tie count, the model's own confidence).
Needs: `needs_model`, it runs the classifier (`clf` first); `needs_region`,
it takes the object's region (masks or boxes); `needs_method`, it takes a
saliency method and explains the images itself. A random metric takes a
PRNG key `key` (its signature says so). The needs give the metric's `kind`, how any caller
(the benchmark's evaluation stage) calls it, with `POSITIONAL` arguments
first and its options as keywords:

  "method"  fn(method, clf, images, labels, *, key, method_options=..., **options)
  "model"   fn(clf, images, maps, labels, *, key=... (if random), **options)
  "region"  fn(maps, region, **options)            (localisation, pointing games)
  "maps"    fn(maps, **options)                    (complexity)

A metric whose fields are all per image (`per_image_fields`: shapes "f32[B]",
"bool[B]", curves "f32[B, n]") can be computed per batch of maps. Functions that summarise or
prepare results (`pointing_accuracy`, `summarize_confidence_change`, the
randomisation and similarity helpers) are not metrics. Each metric's
definition is its section of docs/metrics.md, anchored at its name.
"""

import dataclasses
import re
from collections.abc import Mapping
from typing import NamedTuple

HIGHER = "higher"
LOWER = "lower"
METHOD, MODEL, REGION, MAPS = "method", "model", "region", "maps"
# The positional arguments of each kind of metric, before its keyword options (module doc).
POSITIONAL: dict[str, tuple[str, ...]] = {
    METHOD: ("method", "clf", "images", "labels"), MODEL: ("clf", "images", "maps", "labels"),
    REGION: ("maps", "region"), MAPS: ("maps",)}


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

  @property
  def kind(self) -> str | None:
    """How the metric is called (module doc): "method", "model", "region" or "maps"; None for a
    metric of both the model and the region (no calling convention)."""
    if self.needs_method:
      return METHOD
    if self.needs_model:
      return None if self.needs_region else MODEL
    return REGION if self.needs_region else MAPS

  def per_image_fields(self) -> tuple[str, ...]:
    """The fields with one value (or one curve) per image: shape "<dtype>[B]" or
    "<dtype>[B, ...]"."""
    return tuple(name for name, field in self.fields.items()
                 if re.fullmatch(r"[a-z0-9]+\[B(, [^\]]+)?\]", field.shape))

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
    MetricInfo("sensitivity", {
        "max_sensitivity": Field(_PER_IMAGE, LOWER),
        "avg_sensitivity": Field(_PER_IMAGE, LOWER)}, needs_model=True, needs_method=True),
    MetricInfo("local_lipschitz_estimate", {
        "estimate": Field(_PER_IMAGE, LOWER)}, needs_model=True, needs_method=True),
    MetricInfo("relative_stability", {
        "ris": Field(_PER_IMAGE, LOWER),
        "rrs": Field(_PER_IMAGE, LOWER),
        "ros": Field(_PER_IMAGE, LOWER)}, needs_model=True, needs_method=True),
    MetricInfo("pixel_flipping", {
        "curve": Field("f32[B, n + 1]", LOWER),
        "auc": Field(_PER_IMAGE, LOWER)}, needs_model=True),
    MetricInfo("region_perturbation", {  # order="lerf": lower is better
        "curve": Field("f32[B, L + 1]", HIGHER),
        "aopc": Field(_PER_IMAGE, HIGHER)}, needs_model=True),
    MetricInfo("selectivity", {
        "curve": Field("f32[B, P + 1]", LOWER),
        "auc": Field(_PER_IMAGE, LOWER)}, needs_model=True),
    MetricInfo("irof", {
        "curve": Field("f32[B, K + 1]", LOWER),
        "aoc": Field(_PER_IMAGE, HIGHER),
        "num_segments": Field("i32[B]", None)}, needs_model=True),
    MetricInfo("faithfulness_correlation", {
        "correlation": Field(_PER_IMAGE, HIGHER),
        "attribution_sums": Field("f32[B, R]", None),
        "score_drops": Field("f32[B, R]", None)}, needs_model=True),
    MetricInfo("faithfulness_estimate", {
        "correlation": Field(_PER_IMAGE, HIGHER),
        "attribution_sums": Field("f32[B, n]", None),
        "score_drops": Field("f32[B, n]", None)}, needs_model=True),
    MetricInfo("monotonicity", {
        "monotonic": Field("bool[B]", HIGHER),
        "increasing_fraction": Field(_PER_IMAGE, HIGHER),
        "curve": Field("f32[B, n]", None)}, needs_model=True),
    MetricInfo("monotonicity_correlation", {
        "correlation": Field(_PER_IMAGE, HIGHER),
        "attribution_sums": Field("f32[B, n]", None),
        "variances": Field("f32[B, n]", None)}, needs_model=True),
    MetricInfo("infidelity", {
        "infidelity": Field(_PER_IMAGE, LOWER)}, needs_model=True),
    MetricInfo("sensitivity_n", {
        "correlation": Field("f32[B, N]", HIGHER)}, needs_model=True),
    MetricInfo("road", {
        "morf_accuracy": Field("f32[B, P]", LOWER),
        "lerf_accuracy": Field("f32[B, P]", HIGHER),
        "morf_probability": Field("f32[B, P]", LOWER),
        "lerf_probability": Field("f32[B, P]", HIGHER),
        "morf_accuracy_auc": Field(_PER_IMAGE, LOWER),
        "lerf_accuracy_auc": Field(_PER_IMAGE, HIGHER),
        "morf_probability_auc": Field(_PER_IMAGE, LOWER),
        "lerf_probability_auc": Field(_PER_IMAGE, HIGHER)}, needs_model=True),
    MetricInfo("pic", {
        "sic_curve": Field("f32[B, N + 1]", HIGHER),
        "aic_curve": Field("f32[B, N + 1]", HIGHER),
        "sic_auc": Field(_PER_IMAGE, HIGHER),
        "aic_auc": Field(_PER_IMAGE, HIGHER),
        "sic_valid": Field("bool[B]", None),
        "aic_valid": Field("bool[B]", None),
        "probabilities": Field("f32[B, T + 2]", None),
        "correct": Field("bool[B, T + 2]", None),
        "information": Field("i32[B, T + 2]", None)}, needs_model=True),
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
