"""The benchmark config (experiments/configs/benchmark.py): validation and what it implies.

`validate_config` runs before any data is loaded and raises a ValueError naming
the field. `runs` lists the runs (one per model and mode) and `train_config`
builds each trained one's salijax.train config; a run in mode "pretrained"
(`PRETRAINED`) is not trained: it is config.pretrained's ImageNet model as it
is, with its 1000 classes (`trained_models`). `label_modes` and
`perturbation_names` list the other dimensions of the explain and evaluate units.
`eval_interpolation` is the resampling of a run's evaluation images.
`metric_names` and `metric_options` give the extra metrics of the evaluation
stage (config.metrics, `salijax.pipeline.metric_calls`); `RESULT_FIELDS` are
the fields a finished workdir may change (`benchmark_workdir.check_same_config`):
the stages that use them (`STAGE_FIELDS`) run again, the evaluation stage
computing only the extra metrics that changed.

Label modes (the class explained and scored, resolved on the clean image):
"ground_truth", "predicted" (the most likely class) and "least_likely" (the
least likely class: a method whose maps hardly change from the predicted to
the least likely class does not explain the decision).
"""

import dataclasses

import ml_collections

from salijax import compute_dtype, methods, metrics, models, perturbations, train
from salijax.config_checks import check_fields, expect, is_int
from salijax.metrics.explanation_robustness import SSIM_MIN_SIZE
from salijax.metrics.sanity_check import MODES as SANITY_MODES
from salijax.pipeline import metric_calls
from salijax.train import modes as train_modes
from salijax.train.config import eval_interpolation as training_interpolation

FIELDS = (
    "seed", "dataset", "data_dir", "synthetic", "train_split", "eval_split", "image_size",
    "crop_fraction", "models", "modes", "pretrained", "train", "run_overrides", "num_images",
    "batch_size", "label_modes", "perturbations", "diagnostics_top_k", "methods", "controls",
    "method_options", "insertion_deletion", "pointing_tolerance", "metrics", "metric_options",
    "sanity", "overlay_images", "colormap", "compute_dtype",
)
# Fields a workdir's config may change after a run: the stages of STAGE_FIELDS that use them
# run again (their DONE.json records the fields' values).
RESULT_FIELDS = ("metrics", "metric_options")
STAGE_FIELDS = {"evaluate": RESULT_FIELDS, "report": RESULT_FIELDS}
# Their values in a workdir made before the fields existed (a DONE.json without "config").
RESULT_FIELDS_BEFORE = {"metrics": "", "metric_options": {}}
# The values of fields added later, in a workdir made before they existed (its config.json).
FIELDS_BEFORE = {"compute_dtype": "float32"}
LABEL_MODES = ("ground_truth", "predicted", "least_likely")
# The mode of a run that explains config.pretrained's ImageNet classifier as it is (no training).
PRETRAINED = "pretrained"
MODES = (*train_modes.MODES, PRETRAINED)
# Data fields of the benchmark that every training run shares.
SHARED_DATA_FIELDS = ("dataset", "data_dir", "synthetic", "train_split", "eval_split",
                      "image_size", "crop_fraction", "seed")


@dataclasses.dataclass(frozen=True)
class Run:
  """One model of the benchmark: `model` trained in `mode` (or PRETRAINED), named
  "<model>_<mode>"."""

  model: str
  mode: str

  @property
  def name(self) -> str:
    return f"{self.model}_{self.mode}"


def names_list(value: str) -> tuple[str, ...]:
  """"a, b,c" -> ("a", "b", "c")."""
  return tuple(part.strip() for part in value.split(",") if part.strip())


def runs(config: ml_collections.ConfigDict) -> tuple[Run, ...]:
  """Every (model, mode) run, models first."""
  return tuple(Run(model, mode) for model in names_list(config.models)
               for mode in names_list(config.modes))


def trains(config: ml_collections.ConfigDict) -> bool:
  """Whether some run of `config` is trained (not every mode is PRETRAINED)."""
  return any(run.mode != PRETRAINED for run in runs(config))


def method_names(config: ml_collections.ConfigDict) -> tuple[str, ...]:
  return names_list(config.methods)


def label_modes(config: ml_collections.ConfigDict) -> tuple[str, ...]:
  """The label modes, in config order; the first one is the sanity check's and the figures'."""
  return names_list(config.label_modes)


def perturbation_names(config: ml_collections.ConfigDict) -> tuple[str, ...]:
  """"none" (the clean images), then config.perturbations in config order."""
  return (perturbations.NONE, *names_list(config.perturbations))


def method_options(config: ml_collections.ConfigDict, method: str) -> dict:
  """The hyperparameters given for `method` (none: the method's defaults)."""
  options = config.method_options.get(method)
  return dict(options.to_dict() if options is not None else {})


def metric_names(config: ml_collections.ConfigDict) -> tuple[str, ...]:
  """The extra metrics of the evaluation stage (config.metrics), in config order."""
  return names_list(config.metrics)


def metric_options(config: ml_collections.ConfigDict, metric: str) -> dict:
  """The keyword options given for the extra metric `metric` (none: its defaults)."""
  options = config.metric_options.get(metric)
  return dict(options.to_dict() if options is not None else {})


def train_config(config: ml_collections.ConfigDict, run: Run) -> ml_collections.ConfigDict:
  """The salijax.train config of `run`: config.train, the shared data fields, the
  run's model/mode/weights, then run_overrides[model] and run_overrides[model_mode]."""
  result = ml_collections.ConfigDict(config.train.to_dict())
  for field in SHARED_DATA_FIELDS:
    result[field] = config[field]
  result.model = run.model
  result.mode = run.mode
  result.pretrained = "none" if run.mode == "scratch" else config.pretrained
  for key in (run.model, run.name):
    overrides = config.run_overrides.get(key)
    for field, value in (overrides.items() if overrides is not None else ()):
      if field not in result:
        raise ValueError(f"config.run_overrides.{key}.{field}: not a training config field")
      result[field] = value
  return result


def eval_interpolation(config: ml_collections.ConfigDict, run: Run) -> str:
  """How `run`'s evaluation images are resampled, "bilinear" or "bicubic": as its training
  evaluates them (`salijax.train.config.eval_interpolation`: its torchvision checkpoint's
  interpolation when it starts from pretrained weights, bicubic for efficientnet_b0; else
  bilinear). The geometry (config.image_size, config.crop_fraction) is the same for every run
  (docs/models.md)."""
  return training_interpolation(train_config(config, run))


def _check_perturbations(config: ml_collections.ConfigDict) -> None:
  """config.perturbations: distinct known names whose valid pixels hold an SSIM window."""
  names = names_list(config.perturbations)
  expect(isinstance(config.perturbations, str) and len(set(names)) == len(names)
         and perturbations.NONE not in names, "perturbations",
         "a comma list of distinct perturbations ('' for none; the clean images are always "
         "explained)", config.perturbations)
  for name in names:
    try:
      perturbations.check_name(name)
    except ValueError as error:
      raise ValueError(f"config.perturbations: {error}") from None
    if perturbations.is_geometric(name) and is_int(config.image_size, 1):
      top, bottom, left, right = metrics.largest_valid_rectangle(
          perturbations.valid_pixels(name, config.image_size, config.image_size))
      expect(min(bottom - top, right - left) >= SSIM_MIN_SIZE, "perturbations",
             f"augmentations that keep a {SSIM_MIN_SIZE} x {SSIM_MIN_SIZE} rectangle of valid "
             f"pixels at image_size {config.image_size} (for SSIM)", name)


def _check_metrics(config: ml_collections.ConfigDict) -> None:
  """config.metrics: distinct catalogued metrics the benchmark can call per unit;
  config.metric_options: options of catalogued metrics that their signatures take."""
  names = metric_names(config)
  expect(isinstance(config.metrics, str) and len(set(names)) == len(names), "metrics",
         "a comma list of distinct metrics of salijax.metrics ('' for none)", config.metrics)
  for name in names:
    try:
      metric_calls.check_metric(name)
    except ValueError as error:
      raise ValueError(f"config.metrics: {error}") from None
  expect(isinstance(config.metric_options, ml_collections.ConfigDict), "metric_options",
         "a ConfigDict of options per metric", config.metric_options)
  for name in config.metric_options:
    expect(isinstance(config.metric_options[name], ml_collections.ConfigDict),
           f"metric_options.{name}", "a ConfigDict of keyword options",
           config.metric_options[name])
    try:
      metric_calls.check_metric(name)
      metric_calls.check_options(name, metric_options(config, name))
    except ValueError as error:
      raise ValueError(f"config.metric_options.{name}: {error}") from None


def _check_pretrained(config: ml_collections.ConfigDict, run: Run) -> None:
  """A PRETRAINED run needs ImageNet weights (its images are resampled with their
  checkpoint's interpolation: `eval_interpolation`). run_overrides do not apply to it."""
  expect(config.pretrained != "none", "pretrained",
         f"'torchvision' or a .pth file for mode {PRETRAINED!r}", config.pretrained)


def validate_config(config: ml_collections.ConfigDict) -> None:
  """Raises ValueError on the first invalid field (see the config file's comments)."""
  check_fields(config, FIELDS, "experiments/configs/benchmark.py")
  model_names = names_list(config.models)
  expect(bool(model_names) and all(m in models.ARCHITECTURES for m in model_names), "models",
         f"a comma list of {models.ARCHITECTURES}", config.models)
  mode_names = names_list(config.modes)
  expect(bool(mode_names) and all(m in MODES for m in mode_names), "modes",
         f"a comma list of {MODES}", config.modes)
  known = set(models.ARCHITECTURES) | {Run(a, m).name for a in models.ARCHITECTURES
                                        for m in MODES}
  for key in config.run_overrides:
    expect(key in known, f"run_overrides.{key}", "an architecture or <architecture>_<mode> "
           "(overrides of runs not in this benchmark are ignored)", key)
  for field in ("num_images", "overlay_images"):
    value = config[field]
    expect(is_int(value, 0), field,
           "an integer >= 0 (num_images 0: the whole split)", value)
  expect(is_int(config.batch_size, 1), "batch_size", "an integer >= 1", config.batch_size)
  expect(is_int(config.image_size, 1), "image_size", "an integer >= 1", config.image_size)
  modes = label_modes(config)
  expect(bool(modes) and all(m in LABEL_MODES for m in modes) and len(set(modes)) == len(modes),
         "label_modes", f"a comma list of distinct label modes among {LABEL_MODES}",
         config.label_modes)
  _check_perturbations(config)
  expect(is_int(config.diagnostics_top_k, 1), "diagnostics_top_k", "an integer >= 1",
         config.diagnostics_top_k)
  registered = methods.names()
  method_list = method_names(config)
  expect(bool(method_list) and all(m in registered for m in method_list), "methods",
         f"a comma list of the registered methods {registered}", config.methods)
  expect(len(set(method_list)) == len(method_list), "methods", "no repeated method",
         config.methods)
  controls = names_list(config.controls)
  expect(all(c in method_list for c in controls), "controls", "a subset of config.methods",
         config.controls)
  for name in config.method_options:
    expect(name in registered, f"method_options.{name}", "options of a registered method "
           "(those of methods not in config.methods are ignored)", name)
    accepted = sorted(methods.info(name).options)
    bad = sorted(set(method_options(config, name)) - set(accepted))
    expect(not bad, f"method_options.{name}", f"hyperparameters of {name}: {accepted}", bad)
  _check_metrics(config)
  sanity = config.sanity
  expect(is_int(sanity.num_images, 2), "sanity.num_images",
         "an integer >= 2 (the baseline compares different images)", sanity.num_images)
  expect(sanity.mode in SANITY_MODES, "sanity.mode", f"one of {SANITY_MODES}",
         sanity.mode)
  expect(all(m in method_list for m in names_list(sanity.methods)), "sanity.methods",
         "a subset of config.methods", sanity.methods)
  expect("fake_cam" not in names_list(sanity.methods), "sanity.methods",
         "methods with non-constant maps (no rank correlation of Fake-CAM's all-ones maps)",
         sanity.methods)
  expect(config.compute_dtype in compute_dtype.DTYPES, "compute_dtype",
         f"one of {compute_dtype.DTYPES}, the dtype of every model forward after training",
         config.compute_dtype)
  expect(config.pointing_tolerance >= 0, "pointing_tolerance", "a distance >= 0 in pixels",
         config.pointing_tolerance)
  for run in runs(config):
    if run.mode == PRETRAINED:
      _check_pretrained(config, run)
    else:
      train.validate_config(train_config(config, run))
