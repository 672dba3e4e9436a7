"""The explanation stage: every method's maps of the evaluation set, batch by batch.

A unit is (run, method, batch); the units are shared out over the JAX
processes (`salijax.parallel.process_share`) and each process splits its batch
over its local devices (`salijax.parallel.run_sharded`). A unit writes
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

from salijax import methods, models, parallel
from salijax.pipeline import benchmark_workdir as bw
from salijax.pipeline import evaluation_set, trained_models
from salijax.pipeline.benchmark_config import Run, method_names, method_options


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


def units(config: ml_collections.ConfigDict, runs: Sequence[Run],
          eval_set: evaluation_set.EvaluationSet) -> list[tuple[Run, str, int]]:
  """Every (run, method, batch) of the stage, in a fixed order."""
  num_batches = len(eval_set.batch_indices(config.batch_size))
  return [(run, method, b) for run in runs for method in method_names(config)
          for b in range(num_batches)]


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
  """This process's share of the units; units whose file exists are skipped."""
  all_units = units(config, runs, eval_set)
  mine = [all_units[i] for i in parallel.process_share(len(all_units))]
  todo = [u for u in mine if not bw.batch_path(workdir, "explain", u[0].name, u[1], u[2]).exists()]
  positions = eval_set.batch_indices(config.batch_size)
  bar.reset(total=sum(len(positions[b]) for _, _, b in mine))
  bar.update(sum(len(positions[b]) for _, _, b in mine) - sum(len(positions[b])
                                                               for _, _, b in todo))
  source = evaluation_set.load_source(config, config.eval_split) if todo else None
  loaded: dict[str, Any] = {}
  for run, method, b in todo:
    if run.name not in loaded:
      loaded.clear()  # one model in memory at a time
      module, variables, _ = trained_models.load_run(workdir, run)
      loaded[run.name] = models.classifier(module, variables)
    batch = evaluation_set.eval_batch(config, source, eval_set, positions[b], config.batch_size)
    arrays = explain_unit(config, loaded[run.name], batch, method, b)
    bw.save_arrays(bw.batch_path(workdir, "explain", run.name, method, b), arrays)
    bar.update(len(positions[b]))
