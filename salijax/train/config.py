"""Validation of a training config (see experiments/configs/train.py for the fields).

`validate_config` runs before any data is loaded or anything is compiled and
raises a `ValueError` naming the field, the expected and the received value.
"""

import os
import warnings

import ml_collections

from salijax import models
from salijax.train import modes
from salijax.train import optimizer as optimizer_lib

PRETRAINED_KEYWORDS = ("none", "torchvision")
FIELDS = (
    "model", "head", "classifier_width", "mode", "pretrained", "trainable_layers", "dataset", "data_dir",
    "synthetic", "train_split", "eval_split", "image_size", "crop_scale",
    "crop_fraction", "batch_size", "eval_batch_size", "num_epochs", "optimizer",
    "learning_rate", "momentum", "nesterov", "weight_decay", "warmup_epochs",
    "lr_floor", "label_smoothing", "seed", "log_every_steps",
    "checkpoint_every_steps", "eval_every_epochs", "progress_bar",
)


def trainable_layers(config: ml_collections.ConfigDict) -> tuple[str, ...]:
  """`config.trainable_layers` ("layer4,fc") as a tuple of prefixes; () = all."""
  return tuple(p.strip() for p in config.trainable_layers.split(",") if p.strip())


def classifier_width(config: ml_collections.ConfigDict) -> int | None:
  """`config.classifier_width` for `salijax.models.create` (0 -> None, the default)."""
  return config.get("classifier_width", 0) or None


def _expect(ok: bool, field: str, expected: str, value) -> None:
  if not ok:
    raise ValueError(f"config.{field}: expected {expected}, got {value!r}")


def validate_config(config: ml_collections.ConfigDict) -> None:
  """Raises ValueError on the first invalid field; warns on questionable choices.

  Warns (UserWarning) when mode is "feature_extraction" or "finetune" with
  pretrained="none": allowed, but the backbone is then random.
  """
  missing = [f for f in FIELDS if f not in config]
  if missing:
    raise ValueError(f"config: missing fields {missing}; start from the get_config() "
                     "of experiments/configs/train.py")
  unknown = [f for f in config if f not in FIELDS]
  if unknown:
    raise ValueError(f"config: unknown fields {unknown}; the fields are {FIELDS}")
  _expect(config.model in models.ARCHITECTURES, "model",
          f"one of {tuple(models.ARCHITECTURES)}", config.model)
  _expect(config.head in models.HEADS, "head", f"one of {tuple(models.HEADS)}",
          config.head)
  width = config.classifier_width
  _expect(isinstance(width, int) and not isinstance(width, bool) and width >= 0
          and (width == 0 or config.model.startswith("vgg")), "classifier_width",
          "0 (the architecture's), or a positive int for a VGG model", width)
  _expect(width in (0, 4096) or config.pretrained == "none", "classifier_width",
          "0 or 4096 with pretrained weights (torchvision's width)", width)
  _expect(config.mode in modes.MODES, "mode", f"one of {modes.MODES}", config.mode)
  _expect(config.optimizer in optimizer_lib.OPTIMIZERS, "optimizer",
          f"one of {optimizer_lib.OPTIMIZERS}", config.optimizer)
  pretrained = config.pretrained
  _expect(isinstance(pretrained, str) and (
      pretrained in PRETRAINED_KEYWORDS or os.path.isfile(pretrained)), "pretrained",
          f"one of {PRETRAINED_KEYWORDS} or the path of an existing .pth file", pretrained)
  _expect(config.mode != "scratch" or pretrained == "none", "pretrained",
          "'none' for mode='scratch' (use mode='finetune' to start from weights)",
          pretrained)
  if config.mode != "scratch" and pretrained == "none":
    warnings.warn(
        f"config.mode={config.mode!r} with config.pretrained='none' trains on top of "
        "a randomly initialised backbone", UserWarning, stacklevel=2)
  _expect(config.mode == "finetune" or not trainable_layers(config), "trainable_layers",
          "'' unless mode='finetune'", config.trainable_layers)
  _expect(isinstance(config.dataset, str) and config.dataset != "", "dataset",
          "a dataset name", config.dataset)
  for field in ("image_size", "batch_size", "eval_batch_size", "num_epochs",
                "log_every_steps", "checkpoint_every_steps", "eval_every_epochs"):
    value = config[field]
    _expect(isinstance(value, int) and not isinstance(value, bool) and value >= 1,
            field, "an integer >= 1", value)
  lo, hi = config.crop_scale
  _expect(0 < lo <= hi <= 1, "crop_scale", "(lo, hi) with 0 < lo <= hi <= 1",
          config.crop_scale)
  _expect(0 < config.crop_fraction <= 1, "crop_fraction", "a value in (0, 1]",
          config.crop_fraction)
  _expect(config.learning_rate > 0, "learning_rate", "> 0", config.learning_rate)
  _expect(0 <= config.momentum < 1, "momentum", "a value in [0, 1)", config.momentum)
  _expect(config.weight_decay >= 0, "weight_decay", ">= 0", config.weight_decay)
  _expect(0 <= config.warmup_epochs <= config.num_epochs, "warmup_epochs",
          f"a value in [0, num_epochs={config.num_epochs}]", config.warmup_epochs)
  _expect(0 <= config.lr_floor < 1, "lr_floor",
          "a fraction of the peak learning rate in [0, 1)", config.lr_floor)
  _expect(0 <= config.label_smoothing < 1, "label_smoothing", "a value in [0, 1)",
          config.label_smoothing)
  _expect(isinstance(config.seed, int) and config.seed >= 0, "seed",
          "an integer >= 0", config.seed)
