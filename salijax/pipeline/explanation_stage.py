"""The explanation stage: every method's maps of the evaluation set, batch by batch.

A unit is (run, method, label mode, perturbation, batch) (`batch_units`); each
process splits its batch over its local devices (`salijax.parallel.run_sharded`).
The unit explains the class of its label mode, read from the predict stage's
file (resolved on the clean image), on the clean images ("none") or on their
perturbation (`perturbations`), and writes
explain/<run>/<method>/<label_mode>/<perturbation>/batch_NNNNN.npz:

  maps f32[b,H,W], position i32[b] (into the evaluation set), label i32[b] (the
  class explained and scored), true i32[b], predicted i32[b] (on the clean
  image), seconds (the method's wall time for the batch, compilation included
  on the first).

The key of a unit is fold_in(fold_in(key(seed), crc32(method)), batch), the
same for every label mode and perturbation: the maps do not depend on the
order of the units or on how many processes share them, and a stochastic
method draws the same masks or samples for the clean and the perturbed
images, so that comparing their maps measures the perturbation, not the
method's noise (the `random` control, which ignores the image, is then
perfectly robust to FGSM, as a map that ignores the image should be).
"""

import time
import zlib
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from salijax import methods, parallel
from salijax.pipeline import batch_units, evaluation_set, perturbations, prediction_stage
from salijax.pipeline.benchmark_config import Run, method_options


def method_key(seed: int, method: str, batch: int) -> jax.Array:
  """The key of `method` on batch `batch` (see the module doc)."""
  method_id = zlib.crc32(method.encode()) & 0x7FFFFFFF
  return jax.random.fold_in(jax.random.fold_in(jax.random.key(seed), method_id), batch)


def padded(values: np.ndarray, size: int) -> np.ndarray:
  """Pads axis 0 to `size` with copies of the last row (the batch's padding)."""
  return np.concatenate([values, np.repeat(values[-1:], size - len(values), axis=0)])


def explain_unit(config: ml_collections.ConfigDict, clf: Any, batch: dict[str, np.ndarray],
                 unit: batch_units.Unit, predicted: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
  """The arrays of one unit's file (see the module doc).

  Args:
    config: the benchmark config.
    clf: the run's Classifier.
    batch: from `evaluation_set.eval_batch`.
    unit: the unit.
    predicted: the predict stage's arrays of the unit's (run, batch).
  """
  valid = batch["valid"]
  size = len(valid)
  labels = padded(prediction_stage.explained_labels(unit.label_mode, predicted["true"],
                                                    predicted["probabilities"]), size)
  images = perturbations.perturbed_images(clf, batch["image"], batch["label"], unit.perturbation)
  start = time.perf_counter()
  maps = parallel.run_sharded(
      methods.get(unit.method), clf, jnp.asarray(images), jnp.asarray(labels),
      key=method_key(config.seed, unit.method, unit.batch),
      **method_options(config, unit.method))
  maps = np.asarray(jax.block_until_ready(maps))
  return {"maps": maps[valid].astype(np.float32), "position": batch["position"][valid],
          "label": labels[valid], "true": batch["label"][valid],
          "predicted": predicted["probabilities"].argmax(-1).astype(np.int32),
          "seconds": np.float64(time.perf_counter() - start)}


def run_stage(config: ml_collections.ConfigDict, workdir: str, runs: Sequence[Run],
              eval_set: evaluation_set.EvaluationSet, bar: Any) -> None:
  """This process's share of the units (`batch_units.run_units`)."""
  def work(clf: Any, batch: dict[str, np.ndarray],
           unit: batch_units.Unit) -> dict[str, np.ndarray]:
    predicted = prediction_stage.load_unit(workdir, unit.run, unit.batch)
    return explain_unit(config, clf, batch, unit, predicted)

  batch_units.run_units(config, workdir, eval_set, bar,
                        batch_units.units(config, runs, eval_set),
                        lambda unit: batch_units.unit_path(workdir, "explain", unit), work)
