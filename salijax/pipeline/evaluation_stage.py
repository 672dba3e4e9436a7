"""The evaluation stage: every metric of every map, batch by batch.

A unit is (run, method, label mode, perturbation, batch) (`batch_units.Unit`),
as in the explanation stage. It reads the unit's explain file and writes
evaluate/<run>/<method>/<label_mode>/<perturbation>/batch_NNNNN.npz with
per-image arrays, the metrics of the maps on the images they explain (the
perturb stage's images for a perturbation, `salijax.perturbations`):

  insertion_auc, deletion_auc f32[b]; insertion_curve, deletion_curve f32[b,n+1]
  average_drop, increase_in_confidence, average_gain f32[b] (per image, in %:
    100 drop, 100 [O > Y], 100 gain; their means are the usual averages)
  sparseness, entropy, mass_fraction_90 f32[b]
  pointing_game (hit as 0/1), energy_pointing_game f32[b]: where the dataset
    has object masks or boxes (NaN for an object moved out of the image)
  position i32[b]

and for a perturbation p other than "none", comparing with the clean unit:

  robustness_spearman, robustness_ssim f32[b]: the map of p(I) against p applied
    to the map of I, on p's valid pixels (salijax.metrics.explanation_robustness)
  prediction_flipped f32[b]: 1 where the class predicted on p(I) differs from
    the one predicted on I (a property of the model, the same for every method)

Constant maps (the Fake-CAM control) are scored with insertion/deletion's
raster-order tie rule (`allow_constant_maps`).
"""

import jax.numpy as jnp
import ml_collections
import numpy as np

from salijax import metrics, parallel, perturbations
from salijax.pipeline import batch_units, stage_helpers
from salijax.pipeline.benchmark_config import names_list
from salijax.pipeline.stage_context import Context, TrainedModel


def _pointing(config: ml_collections.ConfigDict, maps: jnp.ndarray, region: np.ndarray,
              perturbation: str) -> dict[str, np.ndarray]:
  """The two pointing games on the (moved) regions; NaN where the region left the image."""
  height, width = maps.shape[1:]
  region, present = perturbations.move_regions(region, perturbation, height, width)
  if not present.all():  # a stand-in region for the scoring, then NaN
    region = np.where(present[:, None, None], region, True)
  region = jnp.asarray(region)
  hit = metrics.pointing_game(maps, region, tolerance=config.pointing_tolerance).hit
  energy = metrics.energy_pointing_game(maps, region).proportion
  return {"pointing_game": np.where(present, np.asarray(hit, np.float32), np.nan),
          "energy_pointing_game": np.where(present, np.asarray(energy), np.nan)}


def evaluate_unit(ctx: Context, model: TrainedModel, batch: dict[str, np.ndarray],
                  unit: batch_units.Unit) -> dict[str, np.ndarray]:
  """The arrays of one unit's file (module doc); `batch` from `evaluation_set.eval_batch`."""
  config, clf = ctx.config, model.classifier
  explained = batch_units.read(ctx, "explain", unit)
  count = len(explained["maps"])
  size = len(batch["valid"])
  images = jnp.asarray(stage_helpers.images(ctx, unit.run, batch, unit.batch, unit.perturbation))
  maps = jnp.asarray(stage_helpers.padded(explained["maps"], size))
  labels = jnp.asarray(stage_helpers.padded(explained["label"], size))
  curves = parallel.run_sharded(metrics.insertion_deletion, clf, images, maps, labels,
                                mesh=ctx.mesh, allow_constant_maps=True,
                                **config.insertion_deletion.to_dict())
  change = parallel.run_sharded(metrics.confidence_change, clf, images, maps, labels,
                                mesh=ctx.mesh)
  simplicity = metrics.complexity(maps)
  result = {
      "insertion_auc": curves.insertion_auc, "deletion_auc": curves.deletion_auc,
      "insertion_curve": curves.insertion_curve, "deletion_curve": curves.deletion_curve,
      "average_drop": 100.0 * change.drop,
      "increase_in_confidence": 100.0 * change.increase.astype(np.float32),
      "average_gain": 100.0 * change.gain,
      "sparseness": simplicity.sparseness, "entropy": simplicity.entropy,
      "mass_fraction_90": simplicity.mass_fraction_90,
  }
  region = batch.get("mask", batch.get("bbox"))
  if region is not None:
    result.update(_pointing(config, maps, region, unit.perturbation))
  arrays = {name: np.asarray(value)[:count].astype(np.float32) for name, value in result.items()}
  if unit.perturbation != perturbations.NONE:
    clean = batch_units.read(ctx, "explain", unit._replace(perturbation=perturbations.NONE))
    height, width = maps.shape[1:]
    robustness = metrics.explanation_robustness(
        explained["maps"], perturbations.move_maps(clean["maps"], unit.perturbation),
        perturbations.valid_pixels(unit.perturbation, height, width))
    arrays["robustness_spearman"] = np.asarray(robustness.spearman, np.float32)
    arrays["robustness_ssim"] = np.asarray(robustness.ssim, np.float32)
    predicted = batch_units.read(ctx, "predict", batch_units.BatchUnit(unit.run, unit.batch))
    which = names_list(config.perturbations).index(unit.perturbation)
    flipped = predicted["perturbed_predicted"][which] != predicted["probabilities"].argmax(-1)
    arrays["prediction_flipped"] = flipped.astype(np.float32)
  arrays["position"] = explained["position"]
  return arrays


STAGE = batch_units.UnitStage("evaluate", batch_units.method_units, evaluate_unit)
