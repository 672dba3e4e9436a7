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

and the extra metrics of config.metrics (`metric_calls`), each per-image field f
of metric m as "m.f": f32[b] (a boolean field as 0/1, an integer one as a
float), a curve f32[b,n]; region metrics only where the dataset has object
masks or boxes (NaN for an object moved out of the image). EXTRA_KEY, a JSON
string, records each extra metric's options (and its method's options for a
method metric): a unit file whose record differs from the config's is not
current (`is_current`) and is computed again, keeping its other arrays and
computing only the extra metrics that were added or changed.

Constant maps (the Fake-CAM control) are scored with insertion/deletion's
raster-order tie rule (`allow_constant_maps`).
"""

import json
from typing import Any

import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

from salijax import metrics, parallel, perturbations
from salijax.metrics import catalogue
from salijax.pipeline import batch_units, metric_calls, stage_helpers
from salijax.pipeline import benchmark_workdir as bw
from salijax.pipeline.benchmark_config import (
    method_options,
    metric_names,
    metric_options,
    names_list,
)
from salijax.pipeline.stage_context import Context, TrainedModel

EXTRA_KEY = "extra_metrics"  # the JSON record of the unit's extra metrics (module doc)


def _regions(batch: dict[str, np.ndarray], maps: jnp.ndarray, perturbation: str
             ) -> tuple[jnp.ndarray, np.ndarray] | None:
  """The (moved) object regions of the batch and which are present; None without regions.
  A region that left the image is replaced by the whole image (scored, then set to NaN)."""
  region = batch.get("mask", batch.get("bbox"))
  if region is None:
    return None
  height, width = maps.shape[1:]
  region, present = perturbations.move_regions(region, perturbation, height, width)
  if not present.all():  # a stand-in region for the scoring, then NaN
    region = np.where(present[:, None, None], region, True)
  return jnp.asarray(region), present


def _pointing(config: ml_collections.ConfigDict, maps: jnp.ndarray, region: jnp.ndarray,
              present: np.ndarray) -> dict[str, np.ndarray]:
  """The two pointing games on the (moved) regions; NaN where the region left the image."""
  hit = metrics.pointing_game(maps, region, tolerance=config.pointing_tolerance).hit
  energy = metrics.energy_pointing_game(maps, region).proportion
  return {"pointing_game": np.where(present, np.asarray(hit, np.float32), np.nan),
          "energy_pointing_game": np.where(present, np.asarray(energy), np.nan)}


def _has_regions(ctx: Context) -> bool:
  eval_set = ctx.eval_set()
  return bool(eval_set.has_mask or eval_set.has_bbox)


def _options(config: ml_collections.ConfigDict, name: str) -> dict[str, Any]:
  """The options the extra metric `name` is called with (`metric_calls.options_with_defaults`)."""
  return metric_calls.options_with_defaults(name, metric_options(config, name))


def extra_record(ctx: Context, method: str) -> dict[str, Any]:
  """{metric: {"options": ..., ["method_options": ...]}} of the extra metrics a unit of
  `method` gets (JSON values), in config order; region metrics only where the dataset has
  regions."""
  config, record = ctx.config, {}
  for name in metric_names(config):
    kind = catalogue.info(name).kind
    if kind == catalogue.REGION and not _has_regions(ctx):
      logging.log_first_n(logging.WARNING, "config.metrics: %s needs object masks or boxes, "
                          "which dataset %s lacks; not computed", 1, name, config.dataset)
      continue
    entry = {"options": _options(config, name)}
    if kind == catalogue.METHOD:
      entry["method_options"] = method_options(config, method)
    record[name] = entry
  return json.loads(json.dumps(record))  # tuples as lists, as read back


def stored_record(arrays: dict[str, np.ndarray]) -> dict[str, Any]:
  """The EXTRA_KEY record of a unit file's arrays ({} for a file without one)."""
  return json.loads(str(arrays[EXTRA_KEY])) if EXTRA_KEY in arrays else {}


def is_current(ctx: Context, unit: batch_units.Unit) -> bool:
  """Whether the unit's file exists, is readable and holds the config's extra metrics."""
  path = batch_units.unit_path(ctx.workdir, "evaluate", unit)
  if not path.exists():
    return False
  try:
    with np.load(path, allow_pickle=False) as stored:
      record = json.loads(str(stored[EXTRA_KEY])) if EXTRA_KEY in stored.files else {}
  except (OSError, EOFError, ValueError, KeyError) as error:
    logging.warning("%s: cannot be read (%s); computing it again", path, error)
    return False
  return record == extra_record(ctx, unit.method)


def _previous(ctx: Context, unit: batch_units.Unit) -> dict[str, np.ndarray]:
  """The arrays of the unit's existing file, {} if none or unreadable."""
  path = batch_units.unit_path(ctx.workdir, "evaluate", unit)
  try:
    return bw.load_arrays(path) if path.exists() else {}
  except Exception:  # noqa: BLE001 - any unreadable file is computed again
    return {}


def _fixed_metrics(ctx: Context, clf: Any, batch: dict[str, np.ndarray], unit: batch_units.Unit,
                   explained: dict[str, np.ndarray], images: jnp.ndarray, maps: jnp.ndarray,
                   labels: jnp.ndarray) -> dict[str, np.ndarray]:
  """The metrics every unit gets (module doc), cut to the unit's images."""
  config = ctx.config
  count = len(explained["maps"])
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
  regions = _regions(batch, maps, unit.perturbation)
  if regions is not None:
    result.update(_pointing(config, maps, *regions))
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


def _extra_metric(ctx: Context, clf: Any, batch: dict[str, np.ndarray], unit: batch_units.Unit,
                  name: str, images: jnp.ndarray, maps: jnp.ndarray, labels: jnp.ndarray,
                  count: int) -> dict[str, np.ndarray]:
  """{"<name>.<field>": f32[count] or f32[count, n]} of one extra metric (module doc)."""
  config = ctx.config
  info = catalogue.info(name)
  regions = _regions(batch, maps, unit.perturbation) if info.kind == catalogue.REGION else None
  result = metric_calls.call(
      name, clf=clf, images=images, maps=maps, labels=labels,
      region=None if regions is None else regions[0], method=unit.method,
      method_options=method_options(config, unit.method),
      key=metric_calls.metric_key(config.seed, unit.run.name, unit.method, unit.batch, name),
      options=_options(config, name), mesh=ctx.mesh)
  arrays = {}
  for field in info.per_image_fields():
    value = np.asarray(getattr(result, field))[:count].astype(np.float32)
    if regions is not None:
      present = regions[1][:count].reshape((count,) + (1,) * (value.ndim - 1))
      value = np.where(present, value, np.float32(np.nan))
    arrays[f"{name}.{field}"] = value
  return arrays


def evaluate_unit(ctx: Context, model: TrainedModel, batch: dict[str, np.ndarray],
                  unit: batch_units.Unit) -> dict[str, np.ndarray]:
  """The arrays of one unit's file (module doc); `batch` from `evaluation_set.eval_batch`.
  An existing readable file of the unit keeps its fixed metrics and the extra metrics whose
  record is unchanged; only the others are computed."""
  clf = model.classifier
  explained = batch_units.read(ctx, "explain", unit)
  count = len(explained["maps"])
  size = len(batch["valid"])
  images = jnp.asarray(stage_helpers.images(ctx, unit.run, batch, unit.batch, unit.perturbation))
  maps = jnp.asarray(stage_helpers.padded(explained["maps"], size))
  labels = jnp.asarray(stage_helpers.padded(explained["label"], size))
  previous = _previous(ctx, unit)
  record = extra_record(ctx, unit.method)
  kept = {name for name, entry in stored_record(previous).items() if record.get(name) == entry}
  if "position" in previous:  # a complete file: its fixed metrics stay
    arrays = {k: v for k, v in previous.items() if k != EXTRA_KEY and "." not in k}
  else:
    arrays = _fixed_metrics(ctx, clf, batch, unit, explained, images, maps, labels)
  for name in record:
    if name in kept:
      arrays.update({k: v for k, v in previous.items() if k.startswith(f"{name}.")})
    else:
      arrays.update(_extra_metric(ctx, clf, batch, unit, name, images, maps, labels, count))
  arrays[EXTRA_KEY] = np.asarray(json.dumps(record, sort_keys=True))
  return arrays


STAGE = batch_units.UnitStage("evaluate", batch_units.method_units, evaluate_unit,
                              current=is_current)
