"""The ImageNet-validation config (experiments/configs/imagenet_val.py): its settings, and a run
on local stand-ins (TFDS's imagenet2012 builder fed a few JPEGs, a random-weight .pth for
torchvision's weights)."""

import pathlib
import re
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest
import tiny_imagenet_val
from binary_environment import binary_environment

from experiments import imagenet_stand_in
from experiments.configs import imagenet_val
from salijax import porting, report
from salijax.data import preprocessing
from salijax.pipeline import benchmark, benchmark_config, evaluation_set, model_loading

REPO = pathlib.Path(__file__).resolve().parents[2]
CONFIG_FILE = "tests/pipeline/tiny_imagenet_val.py"
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


def test_a_pretrained_efficientnet_sees_bicubic_images():
  """Its checkpoint's evaluation resizes bicubically; the benchmark resamples its images so."""
  config = imagenet_val.get_config()
  config.models = "resnet18,efficientnet_b0"
  benchmark_config.validate_config(config)
  runs = {run.model: run for run in benchmark_config.runs(config)}
  assert benchmark_config.eval_interpolation(config, runs["efficientnet_b0"]) == "bicubic"
  assert benchmark_config.eval_interpolation(config, runs["resnet18"]) == "bilinear"


@pytest.fixture(scope="module")
def stand_ins(torch, torch_models, tmp_path_factory):
  """(TFDS data dir of the stand-in imagenet2012, a random-weight torchvision ResNet18 .pth)."""
  root = tmp_path_factory.mktemp("stand_ins")
  rng = np.random.default_rng(0)
  examples = [(imagenet_stand_in.photo_like_jpeg(rng, *size), label)
              for size, label in zip(SIZES, LABELS, strict=True)]
  weights = root / "resnet18.pth"
  torch.save(torch_models.build("resnet18", seed=1).state_dict(), weights)
  return imagenet_stand_in.prepare(root / "tfds", examples), weights


def _config(stand_ins):
  config = tiny_imagenet_val.get_config()
  config.data_dir, config.pretrained = stand_ins[0], str(stand_ins[1])
  return config


@pytest.fixture(scope="module")
def finished(stand_ins, tmp_path_factory):
  """The workdir of a complete in-process run of the tiny config on the stand-ins."""
  workdir = tmp_path_factory.mktemp("imagenet_val")
  summary = benchmark.run_benchmark(_config(stand_ins), workdir, progress=False)
  assert set(summary["runs"]) == {"resnet18_pretrained"}
  return workdir


@pytest.mark.slow  # ~30 s on 2 cores
def test_the_protocol_runs_end_to_end_on_local_stand_ins(stand_ins, finished):
  config, workdir = _config(stand_ins), finished
  assert not (workdir / "train" / "resnet18_pretrained").exists()  # exported, not trained
  rows = report.read_results(workdir / "report")
  assert {(r["model"], r["mode"]) for r in rows} == {("resnet18", "pretrained")}
  assert {r["method"] for r in rows} == {"gradcam", "rise", "sidu", "lime"}
  labels = {r["image_id"]: r["label"] for r in rows}
  assert sorted(labels.values()) == sorted(LABELS)  # the whole split, ImageNet's class indices
  assert all(np.isfinite(r["value"]) for r in rows if r["metric"] in ("insertion_auc",
                                                                     "deletion_auc"))

  # The predictions are the .pth model's on torchvision's evaluation crop of each image.
  loaded = model_loading.pretrained_model("resnet18", stand_ins[1])
  source = evaluation_set.load_source(config, config.eval_split)
  # TFDS's classes are the 1000 synsets sorted, torchvision's logit order ("tench" first).
  assert source.class_names == sorted(source.class_names) and len(source.class_names) == 1000
  assert (source.class_names[0], loaded.class_names[0]) == ("n01440764", "tench")
  images = np.stack([preprocessing.eval_example(source[i], config.image_size,
                                                config.crop_fraction)["image"]
                     for i in sorted(labels)])
  expected = np.asarray(jax.jit(loaded.classifier.logits)(images)).argmax(-1)
  predicted = {r["image_id"]: r["predicted"] for r in rows}
  assert [predicted[i] for i in sorted(labels)] == expected.tolist()
  # The report's accuracy of the untrained run is measured on the explained images.
  accuracy = np.mean([predicted[i] == labels[i] for i in labels])
  summary_md = (workdir / "report" / "summary.md").read_text()
  assert re.search(rf"\| resnet18_pretrained \| {accuracy:.3f} \| \d", summary_md), summary_md


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


@pytest.mark.slow  # ~1 minute on 2 cores
def test_two_processes_start_on_an_empty_workdir(stand_ins, finished, tmp_path):
  """With no training, two JAX processes (2 simulated CPU devices each) run every stage from
  an empty workdir, process 0 exporting the model, and give the single-process Grad-CAM
  results."""
  workdir = tmp_path / "shared"
  # Grad-CAM only: the other methods' compilations would double the test's time.
  flags = [f"--config={CONFIG_FILE}", f"--config.data_dir={stand_ins[0]}",
           f"--config.pretrained={stand_ins[1]}", "--config.methods=gradcam",
           f"--workdir={workdir}", "--noprogress",
           f"--coordinator_address=127.0.0.1:{_free_port()}", "--num_processes=2"]
  env = binary_environment("--xla_force_host_platform_device_count=2")
  processes = [subprocess.Popen([sys.executable, "-m", "experiments.benchmark", *flags,
                                 f"--process_id={i}"], cwd=REPO, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
               for i in range(2)]
  try:
    errors = [p.communicate(timeout=900)[1].decode() for p in processes]
  finally:
    for p in processes:
      p.kill()
  assert [p.returncode for p in processes] == [0, 0], errors[0][-3000:] + errors[1][-3000:]
  values = {}
  for path in (finished, workdir):
    values[path] = {(r["image_id"], r["method"], r["metric"]): r["value"]
                    for r in report.read_results(path / "report")}
  reference = {key: value for key, value in values[finished].items() if key[1] == "gradcam"}
  result = values[workdir]
  assert result.keys() == reference.keys() and len({key[0] for key in result}) == len(LABELS)
  # Float rounding of the 2-image per-device batches (as tests/pipeline/benchmark_test.py).
  for key, value in reference.items():
    assert result[key] == pytest.approx(value, rel=2e-3, abs=1e-4, nan_ok=True), key
