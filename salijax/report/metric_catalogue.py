"""The metrics of the benchmark's results: display title, direction and meaning of each.

`METRICS` maps a metric name (the `metric` column of results.csv) to its
`MetricInfo`, in the order tables show them. Every value is per image; tables
report the mean over images. Each comes from a field of a `salijax.metrics`
metric (`source`), whose direction and shape the library's catalogue
(`salijax.metrics.catalogue`) gives: a boolean field is hit-or-miss. A metric
outside the catalogue (a future one) still works everywhere: `metric_info`
gives it its name as title and no direction (`higher_is_better=None`), so no
method is marked best on it.

    metric_info("deletion_auc").higher_is_better    # False
    metric_info("localisation.auc").higher_is_better    # True
    ordered_metrics(["entropy", "mine", "insertion_auc"])
    # ["insertion_auc", "entropy", "mine"]
"""

import dataclasses
from collections.abc import Iterable

from salijax.metrics import catalogue


@dataclasses.dataclass(frozen=True)
class MetricInfo:
  """How to show and read one metric."""

  name: str  # the `metric` column of results.csv
  title: str  # the column title in tables and figures
  higher_is_better: bool | None  # None: no direction known (no best marking)
  description: str  # what one per-image value is
  # A hit-or-miss metric: every value is 0 or `hit_value`, the mean is a rate
  # (times hit_value) and its interval the Wilson score interval; None: any value.
  hit_value: float | None = None
  # (metric, field) of salijax.metrics the values come from; None: the benchmark's own.
  source: tuple[str, str] | None = None


def _info(name: str, title: str, source: tuple[str, str], description: str,
          scale: float = 1.0) -> MetricInfo:
  """A metric whose values are `scale` x the `source` (metric, field) of salijax.metrics."""
  metric = catalogue.info(source[0])
  hit = metric.fields[source[1]].shape.startswith("bool")
  return MetricInfo(name=name, title=title, higher_is_better=metric.higher_is_better(source[1]),
                    description=description, hit_value=scale if hit else None, source=source)


_SANITY = ("similarity between the maps of the trained and of the fully randomised model"
           " (cascading parameter randomisation, Adebayo et al. 2018), per image of the"
           " sanity subset")
_SANITY_SOURCE = ("sanity_check", "similarity")  # the last block's, per measure

METRICS: dict[str, MetricInfo] = {info.name: info for info in (
    _info("insertion_auc", "Insertion AUC", ("insertion_deletion", "insertion_auc"),
          "area under the class probability as the most salient pixels are inserted into the"
          " insertion substrate (a blurred image), over pixel fractions 0..1"),
    _info("deletion_auc", "Deletion AUC", ("insertion_deletion", "deletion_auc"),
          "area under the class probability as the most salient pixels are replaced by the"
          " deletion substrate, over pixel fractions 0..1"),
    _info("average_drop", "Average Drop (%)", ("confidence_change", "drop"),
          "100 max(0, Y - O) / Y: the relative loss of class probability when the image is"
          " weighted by its min-max normalised map (Y: image, O: explanation image)", scale=100.0),
    _info("increase_in_confidence", "Increase in Confidence (%)",
          ("confidence_change", "increase"),
          "100 if the class probability of the explanation image exceeds the image's, else 0",
          scale=100.0),
    _info("average_gain", "Average Gain (%)", ("confidence_change", "gain"),
          "100 max(0, O - Y) / (1 - Y): the relative gain of class probability of the"
          " explanation image", scale=100.0),
    _info("pointing_game", "Pointing game", ("pointing_game", "hit"),
          "1 if a maximal pixel of the map lies within the tolerance (15 px by default) of the"
          " object, else 0"),
    _info("energy_pointing_game", "Energy pointing game",
          ("energy_pointing_game", "proportion"),
          "share of the min-max normalised map's energy inside the object"),
    _info("sparseness", "Sparseness (Gini)", ("complexity", "sparseness"),
          "Gini index of the map's magnitudes: 0 uniform, close to 1 for one pixel"),
    _info("entropy", "Entropy (nats)", ("complexity", "entropy"),
          "Shannon entropy of the map's magnitudes normalised to sum 1"),
    _info("mass_fraction_90", "90 % mass fraction", ("complexity", "mass_fraction_90"),
          "share of the pixels that holds 90 % of the map's magnitude"),
    _info("sanity_spearman", "Sanity: Spearman", _SANITY_SOURCE,
          "Spearman rank correlation: " + _SANITY),
    _info("sanity_spearman_abs", "Sanity: Spearman (abs)", _SANITY_SOURCE,
          "Spearman rank correlation of the absolute values: " + _SANITY),
    _info("sanity_ssim", "Sanity: SSIM", _SANITY_SOURCE,
          "structural similarity (SSIM): " + _SANITY),
    _info("sanity_hog", "Sanity: HOG", _SANITY_SOURCE, "correlation of HOG features: " + _SANITY),
    _info("robustness_spearman", "Robustness: Spearman", ("explanation_robustness", "spearman"),
          "Spearman rank correlation of the map of the perturbed image with the perturbation of"
          " the clean image's map, over the pixels that stay inside the image"),
    _info("robustness_ssim", "Robustness: SSIM", ("explanation_robustness", "ssim"),
          "structural similarity (SSIM) of the map of the perturbed image with the perturbation"
          " of the clean image's map, over the largest rectangle of pixels inside the image"),
    MetricInfo(name="prediction_flipped", title="Prediction flipped", higher_is_better=None,
               description="1 if the class predicted on the perturbed image differs from the"
               " clean image's, else 0 (the mean is the flip rate; a property of the model, the"
               " same for every method)", hit_value=1.0),
)}


def field_info(name: str) -> MetricInfo | None:
  """The entry of "<metric>.<field>", a field of a catalogued metric (module doc); else None."""
  metric, _, field = name.partition(".")
  if metric not in catalogue.names() or field not in catalogue.info(metric).fields:
    return None
  return _info(name, name, (metric, field),
               f"field {field} of salijax.metrics.{metric} (docs/metrics.md, section {metric})")


def metric_info(name: str) -> MetricInfo:
  """The catalogue entry of `name`, a field's for "<metric>.<field>" (module doc), or
  title = name and no direction for an unknown metric."""
  if name in METRICS:
    return METRICS[name]
  return field_info(name) or MetricInfo(name=name, title=name, higher_is_better=None,
                                        description="")


def ordered_metrics(names: Iterable[str]) -> list[str]:
  """The distinct `names`: those of `METRICS` in catalogue order, then others as they come."""
  distinct = list(dict.fromkeys(names))
  known = [name for name in METRICS if name in distinct]
  return known + [name for name in distinct if name not in METRICS]
