"""The benchmark shows each run's model the shared evaluation images as its evaluation does:
the same geometry for every run, the checkpoint's interpolation for pretrained starts."""

import ml_collections
import numpy as np
import pytest

from experiments.configs import benchmark as benchmark_config_file
from salijax.data import preprocessing
from salijax.pipeline import benchmark_config, data_stage, evaluation_set, stage_context
from salijax.pipeline.benchmark_config import Run

pytestmark = pytest.mark.xdist_group("pipeline_eval_interpolation")

EFFICIENTNET = Run("efficientnet_b0", "feature_extraction")
RESNET = Run("resnet18", "feature_extraction")


def config_of(pretrained: str = "torchvision") -> ml_collections.ConfigDict:
  """Synthetic 72 px images evaluated at 40 px (resized), EfficientNet-B0 and ResNet18 from
  `pretrained` weights."""
  config = benchmark_config_file.get_config()
  config.synthetic.update({"image_size": 72, "num_train": 16, "num_test": 8, "num_classes": 4})
  config.image_size = 40
  config.models = "efficientnet_b0,resnet18"
  config.modes = "feature_extraction,scratch"
  config.pretrained = pretrained
  config.run_overrides = ml_collections.ConfigDict()
  config.num_images = 4
  return config


def test_pretrained_starts_take_their_checkpoints_interpolation():
  config = config_of()
  assert benchmark_config.eval_interpolation(config, EFFICIENTNET) == "bicubic"
  assert benchmark_config.eval_interpolation(config, RESNET) == "bilinear"
  # From scratch: salijax.train's bilinear resize, whatever the architecture.
  assert benchmark_config.eval_interpolation(config, Run("efficientnet_b0", "scratch")) == (
      "bilinear")
  # A .pth in torchvision's layout is the same architecture's checkpoint.
  assert benchmark_config.eval_interpolation(config_of("weights.pth"), EFFICIENTNET) == (
      "bicubic")


def test_each_runs_batch_is_resampled_as_its_model_evaluates(tmp_path):
  """The context's batches (what every unit stage computes from) of a pretrained
  EfficientNet-B0 run are the evaluation images resized bicubically, ResNet18's
  bilinearly, at one geometry: the same crop of the same images, so maps align pixel for
  pixel; the two differ (by more than an 8-bit step somewhere)."""
  config = config_of()
  runs = (EFFICIENTNET, RESNET)
  ctx = stage_context.Context(config, str(tmp_path), runs, unit_stages={})
  data_stage.run_stage(ctx)
  source = evaluation_set.load_source(config, config.eval_split)
  eval_set = ctx.eval_set()
  positions = np.arange(3)
  images = {}
  for run, interpolation in ((EFFICIENTNET, "bicubic"), (RESNET, "bilinear")):
    batch = ctx.batch(positions, 4, run)
    want = [preprocessing.eval_example(source[eval_set.indices[p]], 40, config.crop_fraction,
                                       interpolation)["image"] for p in positions]
    np.testing.assert_array_equal(batch["image"][:3], np.stack(want))
    np.testing.assert_array_equal(batch["position"], [0, 1, 2, 2])
    images[run] = batch["image"]
  assert images[EFFICIENTNET].shape == images[RESNET].shape == (4, 40, 40, 3)
  assert np.abs(images[EFFICIENTNET] - images[RESNET]).max() > 1.5 / 255
  # A batch asked for again by the bicubic run is its own again (the cache knows the run).
  np.testing.assert_array_equal(ctx.batch(positions, 4, EFFICIENTNET)["image"],
                                images[EFFICIENTNET])
