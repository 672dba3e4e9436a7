"""The sanity stage: the parameter-randomisation check of chosen methods on a few images.

A unit is (run, method) (`batch_units.SanityUnit`) for the methods in
config.sanity.methods. It runs `salijax.metrics.sanity_check`
(config.sanity.mode, every similarity measure) on the first
config.sanity.num_images images of the evaluation set (one batch, unpadded),
explaining the classes of the first label mode (on the clean images) with
the key of the method's first batch, and writes sanity/<run>/<method>.npz:

  block_names str[num_blocks]; similarity_<measure> f32[num_blocks, n];
  baseline_<measure> f32[n - 1, n]; passed_<measure> bool; position i32[n].

Methods whose maps are constant (the Fake-CAM control) have no rank
correlation and cannot be checked; config validation keeps them out.
"""

import functools

import numpy as np

from salijax import methods, metrics
from salijax.pipeline import batch_units, stage_helpers
from salijax.pipeline.benchmark_config import label_modes, method_options, names_list
from salijax.pipeline.stage_context import Context, TrainedModel


def _units(ctx: Context) -> list[batch_units.SanityUnit]:
  return [batch_units.SanityUnit(run, method) for run in ctx.runs
          for method in names_list(ctx.config.sanity.methods)]


def _images(ctx: Context, unit: batch_units.SanityUnit) -> tuple[np.ndarray, int]:
  """The first config.sanity.num_images images, as one unpadded batch."""
  count = min(ctx.config.sanity.num_images, len(ctx.eval_set().indices))
  return np.arange(count), count


def check_unit(ctx: Context, model: TrainedModel, batch: dict[str, np.ndarray],
               unit: batch_units.SanityUnit) -> dict[str, np.ndarray]:
  """The arrays of one unit's file (module doc); `batch` from `evaluation_set.eval_batch`."""
  config = ctx.config
  images = batch["image"]
  labels = stage_helpers.explained_labels(
      label_modes(config)[0], batch["label"],
      stage_helpers.probabilities(ctx, model.classifier, images))
  method_fn = functools.partial(methods.get(unit.method), **method_options(config, unit.method))
  result = metrics.sanity_check(
      method_fn, model.classifier, images, labels, mode=config.sanity.mode,
      key=stage_helpers.method_key(config.seed, unit.method, 0))
  arrays: dict[str, np.ndarray] = {"block_names": np.array(result.block_names),
                                   "position": batch["position"]}
  for measure in result.similarity:
    arrays[f"similarity_{measure}"] = np.asarray(result.similarity[measure], np.float32)
    arrays[f"baseline_{measure}"] = np.asarray(result.baseline[measure], np.float32)
    arrays[f"passed_{measure}"] = np.bool_(result.passed[measure])
  return arrays


STAGE = batch_units.UnitStage("sanity", _units, check_unit, images=_images)
