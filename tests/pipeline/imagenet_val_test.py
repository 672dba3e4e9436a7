"""The ImageNet-validation config (experiments/configs/imagenet_val.py): its settings, and a run
on local stand-ins (TFDS's imagenet2012 builder fed a few JPEGs, a random-weight .pth for
torchvision's weights)."""

import re

import jax
import numpy as np
import pytest

from experiments import imagenet_stand_in
from experiments.configs import imagenet_val
from salijax import porting, report
from salijax.data import preprocessing
from salijax.pipeline import benchmark, benchmark_config, evaluation_set, model_loading

# Classes (ImageNet indices) and sizes (height, width) of the stand-in's JPEGs.
LABELS = (0, 1, 217, 482, 571, 999)
SIZES = ((40, 56), (48, 48), (64, 40), (36, 50), (44, 60), (52, 38))


def test_the_config_has_the_protocol_settings():
  config = imagenet_val.get_config()
  benchmark_config.validate_config(config)
  assert (config.dataset, config.eval_split, config.pretrained, config.num_images) == (
      "imagenet2012", "validation", "torchvision", 0)
  runs = [run.name for run in benchmark_config.runs(config)]
  assert runs == ["resnet18_pretrained", "vgg11_pretrained"]
  assert not benchmark_config.trains(config)
  assert benchmark_config.method_names(config) == ("gradcam", "rise", "sidu", "lime")
  rise = benchmark_config.method_options(config, "rise")
  assert (rise["num_masks"], rise["cell"], rise["p"]) == (4000, 7, 0.5)
  lime = benchmark_config.method_options(config, "lime")
  assert (lime["num_segments"], lime["num_samples"]) == (50, 1000)
  assert config.insertion_deletion.step_pixels == 224
  for model in ("resnet18", "vgg11"):  # torchvision's evaluation: resize 256, crop 224
    evaluation = porting.eval_preprocessing(model)
    assert config.image_size == evaluation["crop"]
    assert round(config.image_size / config.crop_fraction) == evaluation["resize"]


def test_a_pretrained_run_needs_weights():
  config = imagenet_val.get_config()
  config.pretrained = "none"
  with pytest.raises(ValueError, match="config.pretrained"):
    benchmark_config.validate_config(config)


def _stand_in(data_dir) -> str:
  rng = np.random.default_rng(0)
  examples = [(imagenet_stand_in.photo_like_jpeg(rng, *size), label)
              for size, label in zip(SIZES, LABELS, strict=True)]
  return imagenet_stand_in.prepare(data_dir, examples)


@pytest.mark.slow  # ~30 s on 2 cores
def test_the_protocol_runs_end_to_end_on_local_stand_ins(torch, torch_models, tmp_path):
  weights = tmp_path / "resnet18.pth"
  torch.save(torch_models.build("resnet18", seed=1).state_dict(), weights)
  config = imagenet_val.get_config()
  config.data_dir = _stand_in(tmp_path / "tfds")
  config.pretrained = str(weights)
  config.models = "resnet18"  # torchvision's VGG11 weights are 0.5 GB even when random
  config.image_size = 16  # SIDU's 512 masked forwards per image cost little at 16 px
  config.batch_size = 4  # a full batch and a padded one
  config.method_options.rise.num_masks = 8
  config.method_options.lime.num_samples = 8
  config.method_options.lime.num_segments = 8
  config.method_options.sidu.chunk = 64
  config.insertion_deletion.step_pixels = 32
  config.insertion_deletion.blur_size = 5
  config.insertion_deletion.chunk = 32
  config.sanity.methods = ""  # tests/pipeline/benchmark_test.py checks the sanity stage
  config.overlay_images = 2
  workdir = tmp_path / "workdir"
  summary = benchmark.run_benchmark(config, workdir, progress=False)

  assert set(summary["runs"]) == {"resnet18_pretrained"}
  assert not (workdir / "train" / "resnet18_pretrained").exists()  # exported, not trained
  rows = report.read_results(workdir / "report")
  assert {(r["model"], r["mode"]) for r in rows} == {("resnet18", "pretrained")}
  assert {r["method"] for r in rows} == {"gradcam", "rise", "sidu", "lime"}
  labels = {r["image_id"]: r["label"] for r in rows}
  assert sorted(labels.values()) == sorted(LABELS)  # the whole split, ImageNet's class indices
  assert all(np.isfinite(r["value"]) for r in rows if r["metric"] in ("insertion_auc",
                                                                     "deletion_auc"))

  # The predictions are the .pth model's on torchvision's evaluation crop of each image.
  loaded = model_loading.pretrained_model("resnet18", weights)
  source = evaluation_set.load_source(config, config.eval_split)
  # TFDS's classes are the 1000 synsets sorted, torchvision's logit order ("tench" first).
  assert source.class_names == sorted(source.class_names) and len(source.class_names) == 1000
  assert (source.class_names[0], loaded.class_names[0]) == ("n01440764", "tench")
  images = np.stack([preprocessing.eval_example(source[i], 16, config.crop_fraction)["image"]
                     for i in sorted(labels)])
  expected = np.asarray(jax.jit(loaded.classifier.logits)(images)).argmax(-1)
  predicted = {r["image_id"]: r["predicted"] for r in rows}
  assert [predicted[i] for i in sorted(labels)] == expected.tolist()
  # The report's accuracy of the untrained run is measured on the explained images.
  accuracy = np.mean([predicted[i] == labels[i] for i in labels])
  summary_md = (workdir / "report" / "summary.md").read_text()
  assert re.search(rf"\| resnet18_pretrained \| {accuracy:.3f} \| \d", summary_md), summary_md
