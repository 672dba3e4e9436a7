"""The evaluation stage: every metric of every map, batch by batch.

A unit is (run, method, batch) (`batch_units`), as in the explanation stage.
It reads explain/<run>/<method>/batch_NNNNN.npz and writes
evaluate/<run>/<method>/batch_NNNNN.npz with per-image arrays:

  insertion_auc, deletion_auc f32[b]; insertion_curve, deletion_curve f32[b,n+1]
  average_drop, increase_in_confidence, average_gain f32[b] (per image, in %:
    100 drop, 100 [O > Y], 100 gain; their means are the usual averages)
  sparseness, entropy, mass_fraction_90 f32[b]
  pointing_game (hit as 0/1), energy_pointing_game f32[b]: where the dataset
    has object masks or boxes
  position i32[b]

Constant maps (the Fake-CAM control) are scored with insertion/deletion's
raster-order tie rule (`allow_constant_maps`).
"""

from collections.abc import Sequence
from typing import Any

import jax.numpy as jnp
import ml_collections
import numpy as np

from salijax import metrics, parallel
from salijax.pipeline import benchmark_workdir as bw
from salijax.pipeline import batch_units, evaluation_set
from salijax.pipeline.benchmark_config import Run


def _pad(values: np.ndarray, size: int) -> np.ndarray:
  """Pads axis 0 to `size` with copies of the last row (the batch's padding)."""
  return np.concatenate([values, np.repeat(values[-1:], size - len(values), axis=0)])


def evaluate_unit(config: ml_collections.ConfigDict, clf: Any, batch: dict[str, np.ndarray],
                  explained: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
  """The arrays of one unit's file (see the module doc)."""
  count = len(explained["maps"])
  size = len(batch["valid"])
  images = jnp.asarray(batch["image"])
  maps = jnp.asarray(_pad(explained["maps"], size))
  labels = jnp.asarray(_pad(explained["label"], size))
  curves = parallel.run_sharded(metrics.insertion_deletion, clf, images, maps, labels,
                                allow_constant_maps=True, **config.insertion_deletion.to_dict())
  change = parallel.run_sharded(metrics.confidence_change, clf, images, maps, labels)
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
    region = jnp.asarray(region)
    pointing = metrics.pointing_game(maps, region, tolerance=config.pointing_tolerance)
    result["pointing_game"] = pointing.hit.astype(np.float32)
    result["energy_pointing_game"] = metrics.energy_pointing_game(maps, region).proportion
  arrays = {name: np.asarray(value)[:count].astype(np.float32) for name, value in result.items()}
  arrays["position"] = explained["position"]
  return arrays


def run_stage(config: ml_collections.ConfigDict, workdir: str, runs: Sequence[Run],
              eval_set: evaluation_set.EvaluationSet, bar: Any) -> None:
  """This process's share of the units (`batch_units.run_units`)."""
  def work(clf: Any, batch: dict[str, np.ndarray],
           unit: batch_units.Unit) -> dict[str, np.ndarray]:
    explained = bw.load_arrays(
        bw.batch_path(workdir, "explain", unit.run.name, unit.method, unit.batch))
    return evaluate_unit(config, clf, batch, explained)

  batch_units.run_units(config, workdir, "evaluate", runs, eval_set, bar, work)
