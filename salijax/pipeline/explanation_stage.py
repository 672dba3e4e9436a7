"""The explanation stage: every method's maps of the evaluation set, batch by batch.

A unit is (run, method, label mode, perturbation, batch) (`batch_units.Unit`);
each process splits its batch over its local devices
(`salijax.parallel.run_sharded`). The unit explains the class of its label
mode, read from the predict stage's file (resolved on the clean image), on
the clean images ("none") or on their perturbation (the perturb stage's
file), and writes explain/<run>/<method>/<label_mode>/<perturbation>/batch_NNNNN.npz:

  maps f32[b,H,W], position i32[b] (into the evaluation set), label i32[b] (the
  class explained and scored), true i32[b], predicted i32[b] (on the clean
  image), seconds (the method's wall time for the batch, compilation included
  on the first); for the methods of WITH_OBJECTIVE (the mask search) also
  objective f32[b,N], the search's objective at each of its N steps
  (`salijax.methods.mask_search_with_objective`).

The key of a unit is `stage_helpers.method_key(seed, method, batch)`, the
same for every label mode and perturbation: the maps do not depend on the
order of the units or on how many processes share them, and a stochastic
method draws the same masks or samples for the clean and the perturbed
images, so that comparing their maps measures the perturbation, not the
method's noise (the `random` control, which ignores the image, is then
perfectly robust to FGSM, as a map that ignores the image should be).
"""

import time

import jax
import jax.numpy as jnp
import numpy as np

from salijax import methods, parallel
from salijax.pipeline import batch_units, stage_helpers
from salijax.pipeline.benchmark_config import method_options
from salijax.pipeline.stage_context import Context, TrainedModel

# Methods whose explain files also hold their objective per step: name -> the variant that
# returns it beside the maps (the same computation as the registered method).
WITH_OBJECTIVE = {"mask_search": methods.mask_search_with_objective}


def explain_unit(ctx: Context, model: TrainedModel, batch: dict[str, np.ndarray],
                 unit: batch_units.Unit) -> dict[str, np.ndarray]:
  """The arrays of one unit's file (module doc); `batch` from `evaluation_set.eval_batch`."""
  config = ctx.config
  predicted = batch_units.read(ctx, "predict", batch_units.BatchUnit(unit.run, unit.batch))
  valid = batch["valid"]
  size = len(valid)
  labels = stage_helpers.padded(stage_helpers.explained_labels(
      unit.label_mode, predicted["true"], predicted["probabilities"]), size)
  images = stage_helpers.images(ctx, unit.run, batch, unit.batch, unit.perturbation)
  start = time.perf_counter()
  result = parallel.run_sharded(
      WITH_OBJECTIVE.get(unit.method, methods.get(unit.method)), model.classifier,
      jnp.asarray(images), jnp.asarray(labels), mesh=ctx.mesh,
      key=stage_helpers.method_key(config.seed, unit.method, unit.batch),
      **method_options(config, unit.method))
  result = jax.block_until_ready(result)
  seconds = np.float64(time.perf_counter() - start)
  extra = {}
  if unit.method in WITH_OBJECTIVE:
    result, extra = result.maps, {"objective": np.asarray(result.objective)[valid]}
  return {"maps": np.asarray(result)[valid].astype(np.float32),
          "position": batch["position"][valid], "label": labels[valid],
          "true": batch["label"][valid],
          "predicted": predicted["probabilities"].argmax(-1).astype(np.int32),
          "seconds": seconds, **extra}


STAGE = batch_units.UnitStage("explain", batch_units.method_units, explain_unit)
