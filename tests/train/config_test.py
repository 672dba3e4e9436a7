"""Tests of the training config validation and of the default config."""

import warnings

import pytest

from experiments.configs import train as train_config
from salijax.train import config as config_lib


def test_default_config_is_valid():
  with warnings.catch_warnings():
    warnings.simplefilter("error")
    config_lib.validate_config(train_config.get_config())


def test_config_docstring_holds_the_command():
  assert ("python -m experiments.train --config=experiments/configs/train.py"
          in train_config.__doc__)


@pytest.mark.parametrize(("field", "value", "expected"), [
    ("model", "resnet19", "resnet18"),
    ("mode", "fine_tune", "feature_extraction"),
    ("optimizer", "lamb", "adamw"),
    ("head", "conv", "mlp"),
    ("lr_floor", 1.0, r"\[0, 1\)"),
    ("lr_floor", 2.0, r"\[0, 1\)"),
    ("batch_size", 0, ">= 1"),
    ("num_epochs", 0, ">= 1"),
    ("image_size", -8, ">= 1"),
    ("learning_rate", 0.0, "> 0"),
    ("momentum", 1.0, r"\[0, 1\)"),
    ("weight_decay", -1e-4, ">= 0"),
    ("label_smoothing", 1.0, r"\[0, 1\)"),
    ("warmup_epochs", 100.0, "num_epochs"),
    ("crop_scale", (0.9, 0.5), "lo <= hi"),
    ("crop_fraction", 0.0, r"\(0, 1\]"),
    ("pretrained", "/no/such/file.pth", "existing .pth"),
    ("pretrained", "torchvision", "mode='scratch'"),
    ("trainable_layers", "layer4", "unless mode='finetune'"),
    ("classifier_dropout", 0.5, "VGG model"),  # the default model is resnet18
    ("classifier_dropout", -0.5, r"\[0, 1\)"),
])
def test_invalid_field_is_named(field, value, expected):
  config = train_config.get_config()
  config[field] = value
  with pytest.raises(ValueError, match=rf"config\.{field}: expected .*{expected}.*got"):
    config_lib.validate_config(config)


def test_missing_and_unknown_fields():
  config = train_config.get_config()
  del config["lr_floor"]
  with pytest.raises(ValueError, match="missing fields.*lr_floor"):
    config_lib.validate_config(config)
  config = train_config.get_config()
  config.lr_flor = 0.1
  with pytest.raises(ValueError, match="unknown fields.*lr_flor"):
    config_lib.validate_config(config)


@pytest.mark.parametrize("mode", ["feature_extraction", "finetune"])
def test_pretrained_none_warns_for_transfer_modes(mode):
  config = train_config.get_config()
  config.mode = mode
  with pytest.warns(UserWarning, match="randomly initialised backbone"):
    config_lib.validate_config(config)


def test_trainable_layers_parsing():
  config = train_config.get_config()
  config.mode = "finetune"
  config.trainable_layers = " layer4, head ,"
  assert config_lib.trainable_layers(config) == ("layer4", "head")


@pytest.mark.parametrize("model, pretrained, expected", [
    ("efficientnet_b0", "torchvision", "bicubic"),  # its checkpoint's evaluation transform
    ("efficientnet_b0", "none", "bilinear"),  # from scratch: as it trains
    ("resnet18", "torchvision", "bilinear"),
])
def test_eval_interpolation_follows_the_checkpoint(model, pretrained, expected):
  config = train_config.get_config()
  config.model, config.pretrained = model, pretrained
  assert config_lib.eval_interpolation(config) == expected
