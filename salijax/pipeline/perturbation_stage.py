"""The perturb stage: the perturbed images of every batch, computed once for every later stage.

A unit is (run, perturbation, batch) (`batch_units.PerturbationUnit`) for each
perturbation in config.perturbations (`salijax.perturbations`; "none", the
clean images, has no unit). It writes
perturb/<run>/<perturbation>/batch_NNNNN.npz:

  images f32[b,H,W,3] (p of the batch's images, in [0, 1]), position i32[b]

FGSM attacks the true class of each image under the run's model (one forward
and backward pass, split over the local devices); the augmentations do not
depend on the run. The predict, explain, evaluate and report stages read
these files (`stage_helpers.images`), so every stage sees the same perturbed
images. A CPU computes FGSM the same way every time; a GPU may round its
gradients differently from one process to another
(XLA_FLAGS=--xla_gpu_deterministic_ops=true makes it repeatable), which no
longer matters to the other stages since the images are computed once.
"""

import numpy as np

from salijax import parallel, perturbations
from salijax.pipeline import batch_units
from salijax.pipeline.benchmark_config import names_list
from salijax.pipeline.stage_context import Context, TrainedModel


def _units(ctx: Context) -> list[batch_units.PerturbationUnit]:
  return [batch_units.PerturbationUnit(run, name, b) for run in ctx.runs
          for name in names_list(ctx.config.perturbations)
          for b in range(batch_units.num_batches(ctx))]


def perturb_unit(ctx: Context, model: TrainedModel, batch: dict[str, np.ndarray],
                 unit: batch_units.PerturbationUnit) -> dict[str, np.ndarray]:
  """The arrays of one unit's file (module doc); `batch` from `evaluation_set.eval_batch`."""
  valid = batch["valid"]
  images = parallel.run_sharded(perturbations.perturb, model.classifier, batch["image"],
                                batch["label"], name=unit.perturbation, mesh=ctx.mesh)
  return {"images": np.asarray(images, np.float32)[valid], "position": batch["position"][valid]}


STAGE = batch_units.UnitStage("perturb", _units, perturb_unit)
