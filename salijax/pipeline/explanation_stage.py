"""The explanation stage: every method's maps of the evaluation set, batch by batch.

A unit is (run, method, batch) (`batch_units`); each process splits its
batch over its local devices (`salijax.parallel.run_sharded`). A unit writes
explain/<run>/<method>/batch_NNNNN.npz:

  maps f32[b,H,W], position i32[b] (into the evaluation set), label i32[b] (the
  class explained and scored), true i32[b], predicted i32[b], seconds (the
  method's wall time for the batch, compilation included on the first).

The key of a unit is fold_in(fold_in(key(seed), crc32(method)), batch), so the
maps do not depend on the order of the units or on how many processes share them.
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
from salijax.pipeline import batch_units, evaluation_set
from salijax.pipeline.benchmark_config import Run, method_options


def method_key(seed: int, method: str, batch: int) -> jax.Array:
  """The key of `method` on batch `batch` (see the module doc)."""
  method_id = zlib.crc32(method.encode()) & 0x7FFFFFFF
  return jax.random.fold_in(jax.random.fold_in(jax.random.key(seed), method_id), batch)


@jax.jit
def _probabilities(clf: Any, images: jax.Array) -> jax.Array:
  return jax.nn.softmax(clf.apply(clf.variables, images), axis=-1)


def predictions(clf: Any, images: np.ndarray) -> np.ndarray:
  """f32[B,H,W,3] -> softmax probabilities f32[B,K], split over the local devices."""
  return np.asarray(parallel.run_sharded(_probabilities, clf, images))


def explained_labels(config: ml_collections.ConfigDict, true: np.ndarray,
                     predicted: np.ndarray) -> np.ndarray:
  return (true if config.label_mode == "ground_truth" else predicted).astype(np.int32)


def explain_unit(config: ml_collections.ConfigDict, clf: Any, batch: dict[str, np.ndarray],
                 method: str, batch_index: int) -> dict[str, np.ndarray]:
  """The arrays of one unit's file (see the module doc); `batch` from `eval_batch`."""
  valid = batch["valid"]
  predicted = predictions(clf, batch["image"]).argmax(-1)
  labels = explained_labels(config, batch["label"], predicted)
  start = time.perf_counter()
  maps = parallel.run_sharded(
      methods.get(method), clf, jnp.asarray(batch["image"]), jnp.asarray(labels),
      key=method_key(config.seed, method, batch_index), **method_options(config, method))
  maps = np.asarray(jax.block_until_ready(maps))
  return {"maps": maps[valid].astype(np.float32), "position": batch["position"][valid],
          "label": labels[valid], "true": batch["label"][valid],
          "predicted": predicted[valid].astype(np.int32),
          "seconds": np.float64(time.perf_counter() - start)}


def run_stage(config: ml_collections.ConfigDict, workdir: str, runs: Sequence[Run],
              eval_set: evaluation_set.EvaluationSet, bar: Any) -> None:
  """This process's share of the units (`batch_units.run_units`)."""
  batch_units.run_units(
      config, workdir, "explain", runs, eval_set, bar,
      lambda clf, batch, unit: explain_unit(config, clf, batch, unit.method, unit.batch))
