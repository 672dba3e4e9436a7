"""Metrics of saliency maps: pure functions returning NamedTuples of per-image arrays.

  from salijax import metrics
  curves = metrics.insertion_deletion(clf, images, maps, labels)   # .insertion_auc f32[B]
  change = metrics.confidence_change(clf, images, maps)            # labels=None: predicted
  metrics.summarize_confidence_change(change)                      # percentages
  hits = metrics.pointing_game(maps, masks).hit                    # bool[B]
  metrics.complexity(maps).sparseness                              # f32[B]
  metrics.localisation(maps, masks).relevance_mass_accuracy        # f32[B], Quantus's family
  check = metrics.sanity_check(methods.gradcam, clf, images, labels,
                               key=jax.random.key(0))              # .passed per measure
  robust = metrics.explanation_robustness(
      maps_of_rotated, perturbations.augment_maps(maps, "rotate45"),
      perturbations.valid_pixels("rotate45", H, W))                # .spearman, .ssim f32[B]
  metrics.pixel_flipping(clf, images, maps).auc                    # f32[B], Quantus's curves
  metrics.faithfulness_correlation(clf, images, maps, key=key).correlation  # f32[B]
  metrics.info("complexity").fields["entropy"].better              # "lower" (catalogue)
  key = jax.random.key(0)                                          # robustness of a method:
  metrics.sensitivity(methods.gradient, clf, images, key=key).max_sensitivity     # f32[B]
  metrics.local_lipschitz_estimate(methods.gradient, clf, images, key=key).estimate
  metrics.relative_stability(methods.gradient, clf, images, key=key).ris          # .rrs, .ros
"""

from salijax.metrics.catalogue import info, names
from salijax.metrics.completeness import Completeness, completeness
from salijax.metrics.complexity import (
    Complexity,
    EffectiveComplexity,
    complexity,
    effective_complexity,
)
from salijax.metrics.confidence_change import (
    ConfidenceChange,
    confidence_change,
    summarize_confidence_change,
)
from salijax.metrics.explanation_robustness import (
    ExplanationRobustness,
    explanation_robustness,
    largest_valid_rectangle,
)
from salijax.metrics.faithfulness_correlation import (
    FaithfulnessCorrelation,
    FaithfulnessEstimate,
    faithfulness_correlation,
    faithfulness_estimate,
)
from salijax.metrics.infidelity import Infidelity, infidelity
from salijax.metrics.input_invariance import (
    InputInvariance,
    input_invariance,
    shifted_classifier,
)
from salijax.metrics.insertion_deletion import (
    InsertionDeletion,
    insertion_deletion,
    predicted_labels,
)
from salijax.metrics.local_lipschitz import LocalLipschitzEstimate, local_lipschitz_estimate
from salijax.metrics.localisation import Localisation, localisation
from salijax.metrics.map_similarity import (
    SIMILARITIES,
    hog_features,
    hog_similarity,
    spearman,
    spearman_abs,
    ssim,
)
from salijax.metrics.monotonicity import (
    Monotonicity,
    MonotonicityCorrelation,
    monotonicity,
    monotonicity_correlation,
)
from salijax.metrics.mprt_variants import (
    EfficientMPRT,
    SmoothMPRT,
    efficient_mprt,
    smooth_mprt,
)
from salijax.metrics.non_sensitivity import NonSensitivity, non_sensitivity
from salijax.metrics.parameter_randomization import (
    cascading_randomization,
    independent_randomization,
    randomization_blocks,
)
from salijax.metrics.perturbation_curves import (
    Irof,
    PixelFlipping,
    RegionPerturbation,
    Selectivity,
    irof,
    pixel_flipping,
    region_perturbation,
    selectivity,
)
from salijax.metrics.pic import Pic, pic
from salijax.metrics.pointing_game import (
    EnergyPointingGame,
    PointingAccuracy,
    PointingGame,
    energy_pointing_game,
    pointing_accuracy,
    pointing_game,
)
from salijax.metrics.random_logit import RandomLogit, flat_ssim, random_logit
from salijax.metrics.relative_stability import RelativeStability, relative_stability
from salijax.metrics.road import Road, road
from salijax.metrics.sanity_check import SanityCheck, sanity_check
from salijax.metrics.sensitivity import Sensitivity, sensitivity
from salijax.metrics.sensitivity_n import SensitivityN, sensitivity_n

__all__ = [
    "Completeness", "Complexity", "ConfidenceChange", "EffectiveComplexity", "EfficientMPRT",
    "EnergyPointingGame", "ExplanationRobustness", "FaithfulnessCorrelation",
    "FaithfulnessEstimate", "Infidelity", "InputInvariance", "InsertionDeletion", "Irof",
    "LocalLipschitzEstimate", "Localisation", "Monotonicity", "MonotonicityCorrelation",
    "NonSensitivity", "Pic", "PixelFlipping", "PointingAccuracy", "PointingGame", "RandomLogit",
    "RegionPerturbation", "RelativeStability", "Road", "SIMILARITIES", "SanityCheck",
    "Selectivity", "Sensitivity", "SensitivityN", "SmoothMPRT", "cascading_randomization",
    "completeness", "complexity", "confidence_change", "effective_complexity", "efficient_mprt",
    "energy_pointing_game", "explanation_robustness", "faithfulness_correlation",
    "faithfulness_estimate", "flat_ssim", "hog_features", "hog_similarity",
    "independent_randomization", "infidelity", "info", "input_invariance", "insertion_deletion",
    "irof", "largest_valid_rectangle", "local_lipschitz_estimate", "localisation", "monotonicity",
    "monotonicity_correlation", "names", "non_sensitivity", "pic", "pixel_flipping",
    "pointing_accuracy", "pointing_game", "predicted_labels", "random_logit",
    "randomization_blocks", "region_perturbation", "relative_stability", "road", "sanity_check",
    "selectivity", "sensitivity", "sensitivity_n", "shifted_classifier", "smooth_mprt", "spearman",
    "spearman_abs", "ssim", "summarize_confidence_change",
]
