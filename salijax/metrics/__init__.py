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
  metrics.info("complexity").fields["entropy"].better              # "lower" (catalogue)
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
from salijax.metrics.localisation import Localisation, localisation
from salijax.metrics.map_similarity import (
    SIMILARITIES,
    hog_features,
    hog_similarity,
    spearman,
    spearman_abs,
    ssim,
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
from salijax.metrics.pointing_game import (
    EnergyPointingGame,
    PointingAccuracy,
    PointingGame,
    energy_pointing_game,
    pointing_accuracy,
    pointing_game,
)
from salijax.metrics.random_logit import RandomLogit, flat_ssim, random_logit
from salijax.metrics.sanity_check import SanityCheck, sanity_check

__all__ = [
    "Completeness", "Complexity", "ConfidenceChange", "EffectiveComplexity", "EfficientMPRT",
    "EnergyPointingGame", "ExplanationRobustness", "InputInvariance", "InsertionDeletion",
    "Localisation", "NonSensitivity", "PointingAccuracy", "PointingGame", "RandomLogit",
    "SIMILARITIES", "SanityCheck", "SmoothMPRT", "cascading_randomization", "completeness",
    "complexity", "confidence_change", "effective_complexity", "efficient_mprt",
    "energy_pointing_game", "explanation_robustness", "flat_ssim", "hog_features",
    "hog_similarity", "independent_randomization", "info", "input_invariance",
    "insertion_deletion", "largest_valid_rectangle", "localisation", "names", "non_sensitivity",
    "pointing_accuracy", "pointing_game", "predicted_labels", "random_logit",
    "randomization_blocks", "sanity_check", "shifted_classifier", "smooth_mprt", "spearman",
    "spearman_abs", "ssim", "summarize_confidence_change",
]
