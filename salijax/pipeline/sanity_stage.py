"""The sanity stage: the parameter-randomisation check of chosen methods on a few images.

A unit is (run, method) for the methods in config.sanity.methods, shared out
over the processes. It runs `salijax.metrics.sanity_check` (config.sanity.mode,
every similarity measure) on the first config.sanity.num_images images of the
evaluation set, explaining the classes of the first label mode (on the clean
images) with the key of the method's first batch, and writes
sanity/<run>/<method>.npz:

  block_names str[num_blocks]; similarity_<measure> f32[num_blocks, n];
  baseline_<measure> f32[n - 1, n]; passed_<measure> bool; position i32[n].

Methods whose maps are constant (the Fake-CAM control) have no rank
correlation and cannot be checked; config validation keeps them out.
"""

import functools
from collections.abc import Sequence
from typing import Any

import ml_collections
import numpy as np

from salijax import methods, metrics, models, parallel
from salijax.pipeline import benchmark_workdir as bw
from salijax.pipeline import evaluation_set, explanation_stage, prediction_stage, trained_models
from salijax.pipeline.benchmark_config import Run, label_modes, method_options, names_list


def path(workdir: str, run: Run, method: str):
  return bw.run_dir(workdir, "sanity", run.name) / f"{method}.npz"


def check_unit(config: ml_collections.ConfigDict, module: Any, variables: Any,
               batch: dict[str, np.ndarray], method: str) -> dict[str, np.ndarray]:
  """The arrays of one unit's file (see the module doc)."""
  count = int(batch["valid"].sum())
  images = batch["image"][:count]
  clf = models.classifier(module, variables)
  labels = prediction_stage.explained_labels(label_modes(config)[0], batch["label"][:count],
                                            prediction_stage.probabilities(clf, images))
  method_fn = functools.partial(methods.get(method), **method_options(config, method))
  result = metrics.sanity_check(
      method_fn, module, variables, images, labels, mode=config.sanity.mode,
      key=explanation_stage.method_key(config.seed, method, 0))
  arrays: dict[str, np.ndarray] = {"block_names": np.array(result.block_names),
                                   "position": batch["position"][:count]}
  for measure in result.similarity:
    arrays[f"similarity_{measure}"] = np.asarray(result.similarity[measure], np.float32)
    arrays[f"baseline_{measure}"] = np.asarray(result.baseline[measure], np.float32)
    arrays[f"passed_{measure}"] = np.bool_(result.passed[measure])
  return arrays


def run_stage(config: ml_collections.ConfigDict, workdir: str, runs: Sequence[Run],
              eval_set: evaluation_set.EvaluationSet, bar: Any) -> None:
  """This process's share of the (run, method) units; existing files are skipped."""
  all_units = [(run, method) for run in runs for method in names_list(config.sanity.methods)]
  mine = [all_units[i] for i in parallel.process_share(len(all_units))]
  todo = [u for u in mine if not path(workdir, *u).exists()]
  bar.reset(total=len(mine))
  bar.update(len(mine) - len(todo))
  if not todo:
    return
  source = evaluation_set.load_source(config, config.eval_split)
  count = min(config.sanity.num_images, len(eval_set.indices))
  batch = evaluation_set.eval_batch(config, source, eval_set, np.arange(count), count)
  for run, method in todo:
    module, variables, _ = trained_models.load_run(workdir, run)
    bw.save_arrays(path(workdir, run, method), check_unit(config, module, variables, batch,
                                                            method))
    bar.update(1)
