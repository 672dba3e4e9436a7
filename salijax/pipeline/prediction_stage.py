"""The predict stage: each run's class probabilities of the evaluation images.

A unit is (run, batch) (`batch_units.BatchUnit`); it writes
predict/<run>/batch_NNNNN.npz:

  position i32[b] (into the evaluation set), true i32[b] (the ground truth),
  probabilities f32[b,K] (softmax of the clean images),
  perturbations str[P] (config.perturbations, in order),
  perturbed_predicted i32[P,b] (the class predicted on each perturbed image,
    the perturb stage's)

Later stages read the explained classes from these files
(`stage_helpers.explained_labels`), so every method, metric and label mode
uses the same ones. The report's diagnostics.json lists each image's most
and least likely classes from here.
"""

import numpy as np

from salijax.pipeline import batch_units, stage_helpers
from salijax.pipeline.benchmark_config import names_list
from salijax.pipeline.stage_context import Context, TrainedModel


def _units(ctx: Context) -> list[batch_units.BatchUnit]:
  return [batch_units.BatchUnit(run, b) for run in ctx.runs
          for b in range(batch_units.num_batches(ctx))]


def predict_unit(ctx: Context, model: TrainedModel, batch: dict[str, np.ndarray],
                 unit: batch_units.BatchUnit) -> dict[str, np.ndarray]:
  """The arrays of one unit's file (module doc); `batch` from `evaluation_set.eval_batch`."""
  clf, valid = model.classifier, batch["valid"]
  names = names_list(ctx.config.perturbations)
  perturbed = [stage_helpers.probabilities(ctx, clf, stage_helpers.images(
      ctx, unit.run, batch, unit.batch, name)).argmax(-1)[valid] for name in names]
  return {"position": batch["position"][valid], "true": batch["label"][valid],
          "probabilities": stage_helpers.probabilities(ctx, clf, batch["image"])[valid].astype(
              np.float32),
          "perturbations": np.array(names, dtype=str),
          "perturbed_predicted": np.array(perturbed, np.int32).reshape(len(names),
                                                                       int(valid.sum()))}


STAGE = batch_units.UnitStage("predict", _units, predict_unit)
