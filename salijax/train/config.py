"""Validation of a training config (see experiments/configs/train.py for the fields).

`validate_config` runs before any data is loaded or anything is compiled and
raises a `ValueError` naming the field, the expected and the received value.
"""

import os
import warnings
from typing import Any

import ml_collections

from salijax import models, porting
from salijax.config_checks import check_fields, expect, is_int
from salijax.train import modes
from salijax.train import optimizer as optimizer_lib

PRETRAINED_KEYWORDS = ("none", "torchvision")
FIELDS = (
    "model", "head", "classifier_width", "classifier_dropout", "mode", "pretrained",
    "trainable_layers", "lr_scales",
    "dataset", "data_dir", "synthetic", "train_split", "eval_split", "image_size", "crop_scale",
    "crop_fraction", "batch_size", "eval_batch_size", "num_epochs", "optimizer",
    "learning_rate", "momentum", "nesterov", "weight_decay", "warmup_epochs",
    "lr_floor", "label_smoothing", "seed", "log_every_steps",
    "checkpoint_every_steps", "eval_every_epochs", "progress_bar",
)


def trainable_layers(config: ml_collections.ConfigDict) -> tuple[str, ...]:
  """`config.trainable_layers` ("layer4,fc") as a tuple of prefixes; () = all."""
  return tuple(p.strip() for p in config.trainable_layers.split(",") if p.strip())


def lr_scales(config: ml_collections.ConfigDict) -> tuple[tuple[str, float], ...]:
  """`config.lr_scales` ("classifier.0=0.03,head=0.5") as ((prefix, scale), ...); () = none.

  Raises:
    ValueError: an entry is not "<prefix>=<positive number>".
  """
  entries = []
  for part in config.lr_scales.split(","):
    if not part.strip():
      continue
    prefix, _, value = part.partition("=")
    try:
      scale = float(value)
    except ValueError:
      scale = float("nan")
    expect(bool(prefix.strip()) and scale > 0, "lr_scales",
           "a comma list of <torchvision prefix>=<learning-rate factor > 0>", config.lr_scales)
    entries.append((prefix.strip(), scale))
  return tuple(entries)


def vgg_options(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """`salijax.models.create`'s classifier_width and classifier_dropout from the config
  (None, the architecture's, for 0 and -1 or a config without the field)."""
  rate = config.get("classifier_dropout", -1.0)
  return {"classifier_width": config.get("classifier_width", 0) or None,
          "classifier_dropout": None if rate == -1.0 else float(rate)}


def eval_interpolation(config: ml_collections.ConfigDict) -> str:
  """How the evaluation images are resampled, "bilinear" or "bicubic": as the torchvision
  evaluation of `config.model`'s checkpoint does (`porting.eval_preprocessing`: bicubic for
  efficientnet_b0) when training starts from pretrained weights, else bilinear."""
  if config.pretrained == "none":
    return "bilinear"
  return porting.eval_preprocessing(config.model)["interpolation"]


def validate_config(config: ml_collections.ConfigDict) -> None:
  """Raises ValueError on the first invalid field; warns on questionable choices.

  Warns (UserWarning) when mode is "feature_extraction" or "finetune" with
  pretrained="none": allowed, but the backbone is then random.
  """
  check_fields(config, FIELDS, "experiments/configs/train.py")
  expect(config.model in models.ARCHITECTURES, "model",
         f"one of {tuple(models.ARCHITECTURES)}", config.model)
  expect(config.head in models.HEADS, "head", f"one of {tuple(models.HEADS)}",
         config.head)
  width = config.classifier_width
  expect(is_int(width, 0) and (width == 0 or config.model.startswith("vgg")),
         "classifier_width",
         "0 (the architecture's), or a positive int for a VGG model", width)
  expect(width in (0, 4096) or config.pretrained == "none", "classifier_width",
         "0 or 4096 with pretrained weights (torchvision's width)", width)
  rate = config.classifier_dropout
  expect(not isinstance(rate, bool) and isinstance(rate, (int, float))
         and (rate == -1.0 or (0.0 <= rate < 1.0 and config.model.startswith("vgg"))),
         "classifier_dropout",
         "-1 (the architecture's), or a number in [0, 1) for a VGG model", rate)
  expect(config.mode in modes.MODES, "mode", f"one of {modes.MODES}", config.mode)
  expect(config.optimizer in optimizer_lib.OPTIMIZERS, "optimizer",
         f"one of {optimizer_lib.OPTIMIZERS}", config.optimizer)
  pretrained = config.pretrained
  expect(isinstance(pretrained, str) and (
      pretrained in PRETRAINED_KEYWORDS or os.path.isfile(pretrained)), "pretrained",
         f"one of {PRETRAINED_KEYWORDS} or the path of an existing .pth file", pretrained)
  expect(config.mode != "scratch" or pretrained == "none", "pretrained",
         "'none' for mode='scratch' (use mode='finetune' to start from weights)",
         pretrained)
  if config.mode != "scratch" and pretrained == "none":
    warnings.warn(
        f"config.mode={config.mode!r} with config.pretrained='none' trains on top of "
        "a randomly initialised backbone", UserWarning, stacklevel=2)
  lr_scales(config)
  expect(config.mode == "finetune" or not trainable_layers(config), "trainable_layers",
         "'' unless mode='finetune'", config.trainable_layers)
  expect(isinstance(config.dataset, str) and config.dataset != "", "dataset",
         "a dataset name", config.dataset)
  for field in ("image_size", "batch_size", "eval_batch_size", "num_epochs",
                "log_every_steps", "checkpoint_every_steps", "eval_every_epochs"):
    value = config[field]
    expect(is_int(value, 1), field, "an integer >= 1", value)
  # Vision Transformer: its positional embedding fixes the image size.
  module = models.create(config.model)
  if isinstance(module, models.VisionTransformer):
    patch = module.shape.patch_size
    expect(config.image_size % patch == 0, "image_size",
           f"a multiple of {config.model}'s patch size {patch}", config.image_size)
    side = patch * models.vit.VIT_B_16_GRID  # torchvision's checkpoints: 224 x 224
    expect(pretrained == "none" or config.image_size == side, "image_size",
           f"{side} for {config.model} with pretrained weights (their positional "
           "embedding is for that size)", config.image_size)
  lo, hi = config.crop_scale
  expect(0 < lo <= hi <= 1, "crop_scale", "(lo, hi) with 0 < lo <= hi <= 1",
         config.crop_scale)
  expect(0 < config.crop_fraction <= 1, "crop_fraction", "a value in (0, 1]",
         config.crop_fraction)
  expect(config.learning_rate > 0, "learning_rate", "> 0", config.learning_rate)
  expect(0 <= config.momentum < 1, "momentum", "a value in [0, 1)", config.momentum)
  expect(config.weight_decay >= 0, "weight_decay", ">= 0", config.weight_decay)
  expect(0 <= config.warmup_epochs <= config.num_epochs, "warmup_epochs",
         f"a value in [0, num_epochs={config.num_epochs}]", config.warmup_epochs)
  expect(0 <= config.lr_floor < 1, "lr_floor",
         "a fraction of the peak learning rate in [0, 1)", config.lr_floor)
  expect(0 <= config.label_smoothing < 1, "label_smoothing", "a value in [0, 1)",
         config.label_smoothing)
  expect(is_int(config.seed, 0), "seed", "an integer >= 0", config.seed)
