"""Every catalogued metric run once on small inputs, with small options."""

from typing import Any

import jax
import numpy as np

from salijax import methods, metrics


def every_metric(clf: Any, images: jax.Array, maps: jax.Array, labels: jax.Array,
                 region: jax.Array) -> dict[str, Any]:
  """{metric name: its result} on images f32[B,16,16,3], maps f32[B,16,16], labels i32[B]
  and region bool[B,16,16]; the random metrics from fixed keys."""
  return {
      "insertion_deletion": metrics.insertion_deletion(clf, images, maps, labels,
                                                       step_pixels=64),
      "confidence_change": metrics.confidence_change(clf, images, maps, labels),
      "pointing_game": metrics.pointing_game(maps, region),
      "energy_pointing_game": metrics.energy_pointing_game(maps, region),
      "complexity": metrics.complexity(maps),
      "localisation": metrics.localisation(maps, region, k=10),
      "sanity_check": metrics.sanity_check(methods.gradcam, clf, images, labels,
                                           key=jax.random.key(3), measures=("spearman",)),
      "explanation_robustness": metrics.explanation_robustness(
          maps, maps ** 2, np.ones((16, 16), bool)),
      "effective_complexity": metrics.effective_complexity(maps),
      "completeness": metrics.completeness(clf, images, maps, labels),
      "non_sensitivity": metrics.non_sensitivity(clf, images, maps, labels),
      "random_logit": metrics.random_logit(methods.gradient, clf, images, labels,
                                           key=jax.random.key(4)),
      "smooth_mprt": metrics.smooth_mprt(methods.gradient, clf, images, labels,
                                         key=jax.random.key(5), num_samples=2),
      "efficient_mprt": metrics.efficient_mprt(methods.gradient, clf, images, labels,
                                               key=jax.random.key(6)),
      "input_invariance": metrics.input_invariance(methods.gradient, clf, images, labels,
                                                   key=jax.random.key(7)),
      "sensitivity": metrics.sensitivity(methods.gradient, clf, images, labels,
                                         key=jax.random.key(8), num_samples=2),
      "local_lipschitz_estimate": metrics.local_lipschitz_estimate(
          methods.gradient, clf, images, labels, key=jax.random.key(8), num_samples=2),
      "relative_stability": metrics.relative_stability(
          methods.gradient, clf, images, labels, key=jax.random.key(8), num_samples=2),
      "pixel_flipping": metrics.pixel_flipping(clf, images, maps, labels, features_in_step=64),
      "region_perturbation": metrics.region_perturbation(clf, images, maps, labels,
                                                         patch_size=8),
      "selectivity": metrics.selectivity(clf, images, maps, labels, patch_size=8),
      "irof": metrics.irof(clf, images, maps, labels, segments=np.repeat(
          np.arange(2, dtype=np.int32), 128).reshape(1, 16, 16).repeat(len(images), 0)),
      "faithfulness_correlation": metrics.faithfulness_correlation(
          clf, images, maps, labels, key=jax.random.key(4), num_runs=5, subset_size=20),
      "faithfulness_estimate": metrics.faithfulness_estimate(clf, images, maps, labels,
                                                             step_pixels=64),
      "monotonicity": metrics.monotonicity(clf, images, maps, labels, step_pixels=64),
      "monotonicity_correlation": metrics.monotonicity_correlation(
          clf, images, maps, labels, key=jax.random.key(4), num_samples=2, step_pixels=64),
      "infidelity": metrics.infidelity(clf, images, maps, labels, key=jax.random.key(4),
                                       num_samples=4),
      "sensitivity_n": metrics.sensitivity_n(clf, images, maps, labels, key=jax.random.key(4),
                                             subset_sizes=(1, 20), num_samples=4),
      "road": metrics.road(clf, images, maps, labels, key=jax.random.key(3),
                           percentages=(10, 50)),
      "pic": metrics.pic(clf, images, maps, labels, key=jax.random.key(4), num_data_points=20),
  }
