"""The study config (experiments/configs/benchmark_imagenette.py): its settings, and a run on
local stand-ins (an image folder for imagenette, a random-weight .pth for torchvision's)."""

import pathlib

import numpy as np
import pytest
from PIL import Image

from experiments.configs import benchmark_imagenette
from salijax import report
from salijax.pipeline import benchmark, benchmark_config

pytestmark = pytest.mark.slow  # minutes: `make test-fast` leaves it out

CLASSES = ("tench", "English springer", "cassette player")


def test_the_config_has_the_study_settings():
  config = benchmark_imagenette.get_config()
  benchmark_config.validate_config(config)
  assert (config.dataset, config.eval_split, config.pretrained) == (
      "imagenette", "validation", "torchvision")
  runs = [run.name for run in benchmark_config.runs(config)]
  assert runs == ["resnet18_feature_extraction", "resnet18_finetune",
                  "vgg11_feature_extraction", "vgg11_finetune"]
  assert (config.label_modes, config.perturbations) == ("ground_truth", "")
  assert benchmark_config.method_names(config)[:4] == ("gradcam", "rise", "sidu", "lime")
  rise = benchmark_config.method_options(config, "rise")
  assert (rise["num_masks"], rise["cell"], rise["p"]) == (500, 7, 0.1)
  lime = benchmark_config.method_options(config, "lime")
  assert (lime["num_segments"], lime["num_samples"]) == (50, 1000)
  curves = config.insertion_deletion
  assert (curves.step_pixels, curves.insertion_substrate, curves.blur_size, curves.blur_sigma,
          curves.deletion_substrate, curves.substrate_space) == (
              500, "blur", 127, 17.0, "zero", "pixel")
  finetune = benchmark_config.train_config(config, benchmark_config.Run("resnet18", "finetune"))
  assert finetune.pretrained == "torchvision" and finetune.trainable_layers == "layer4,head"
  extraction = benchmark_config.train_config(
      config, benchmark_config.Run("vgg11", "feature_extraction"))
  assert extraction.classifier_width == 0 and extraction.trainable_layers == ""


def _image_folder(root: pathlib.Path) -> None:
  """PATH/<split>/<class>/*.png: each class a colour, 4 training and 2 validation images."""
  rng = np.random.default_rng(0)
  for split, count in (("train", 4), ("validation", 2)):
    for k, name in enumerate(CLASSES):
      folder = root / split / name
      folder.mkdir(parents=True)
      for i in range(count):
        image = rng.integers(0, 60, (48, 56, 3)).astype(np.uint8)
        image[12:36, 14:42, k] = 230
        Image.fromarray(image).save(folder / f"{i}.png")


def test_the_study_runs_end_to_end_on_local_stand_ins(torch, torch_models, tmp_path):
  _image_folder(tmp_path / "imagenette")
  weights = tmp_path / "resnet18.pth"
  torch.save(torch_models.build("resnet18", seed=1).state_dict(), weights)
  config = benchmark_imagenette.get_config()
  config.dataset = f"folder:{tmp_path / 'imagenette'}"
  config.pretrained = str(weights)
  config.models = "resnet18"  # torchvision's VGG11 weights are 0.5 GB even when random
  config.image_size = 32
  config.train.batch_size = 4
  config.train.eval_batch_size = 6
  config.train.num_epochs = 1
  config.batch_size = 4
  config.method_options.rise.num_masks = 8
  config.method_options.rise.chunk = 8
  config.method_options.lime.num_samples = 8
  config.method_options.lime.chunk = 8
  config.methods = "gradcam,rise,lime,fake_cam,random"
  config.sanity.methods = "random"
  config.sanity.num_images = 2
  config.overlay_images = 2
  summary = benchmark.run_benchmark(config, tmp_path / "workdir", progress=False)
  assert set(summary["runs"]) == {"resnet18_feature_extraction", "resnet18_finetune"}
  rows = report.read_results(tmp_path / "workdir" / "report")
  assert {r["mode"] for r in rows} == {"feature_extraction", "finetune"}
  assert len({r["image_id"] for r in rows}) == 6  # the whole validation split
  # No object masks in an image folder: no pointing game rows, every other metric present.
  metrics = {r["metric"] for r in rows}
  assert "pointing_game" not in metrics and {"insertion_auc", "deletion_auc"} <= metrics
  assert all(np.isfinite(r["value"]) for r in rows if r["metric"] == "insertion_auc")
  with pytest.raises(ValueError, match="different config"):
    config.num_images = 3
    benchmark.run_benchmark(config, tmp_path / "workdir", progress=False)
