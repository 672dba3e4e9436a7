"""Tests of experiments.explain_image's --layer, --target and --fgsm: on a tiny checkpoint, as
explain_images' arguments, and their errors."""

import json
import pathlib
import sys
import types

import float_tolerance
import jax
import numpy as np
import pytest
from absl import app
from PIL import Image

from experiments import explain_image as binary
from salijax import methods
from salijax.pipeline import model_loading

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "pipeline"))
from tiny_workdir import CLASS_NAMES, make_tiny_workdir  # noqa: E402 - just above


@pytest.fixture
def image(tmp_path):
  path = tmp_path / "photo.png"
  Image.fromarray(np.random.default_rng(2).integers(0, 256, (40, 40, 3), np.uint8)).save(path)
  return path


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
  path = tmp_path_factory.mktemp("run") / "run"
  make_tiny_workdir(path)
  return path


def test_a_checkpoint_explained_at_a_layer_for_a_named_class(run_main, image, workdir,
                                                              tmp_path):
  """The Grad-CAM map is the one of the named class at layer3 (not the default layer4)."""
  out_dir = tmp_path / "out"
  run_main(f"--image={image}", f"--checkpoint={workdir}", "--methods=gradcam",
           f"--layer={workdir}=layer3", "--target=SQUARE", f"--out_dir={out_dir}")
  summary = json.loads((out_dir / "predictions.json").read_text())
  name = "resnet18 (scratch, run)"
  assert summary["target"] == "SQUARE" and summary["models"][0]["layer"] == "layer3"
  label = CLASS_NAMES.index("square")
  (explained,) = summary["images"][0]["explained"][name]
  assert explained["class"] == label and explained["name"] == "square"
  model = model_loading.trained_model(workdir, layer="layer3")
  with np.load(out_dir / "photo.npz") as arrays:
    images = arrays[f"{name}/image"][None]
    expected = methods.get("gradcam")(model.classifier, images, np.array([label], np.int32),
                                      key=jax.random.fold_in(jax.random.key(0), 0))
    np.testing.assert_array_equal(arrays[f"{name}/gradcam"], np.asarray(expected)[0])


@pytest.mark.parametrize("args,layers,target", [
    ([], None, "top1"),
    (["--layer=layer2"], {"resnet18 (ImageNet)": "layer2", "vgg11 (ImageNet)": "layer2"},
     "top1"),
    (["--layer=vgg11=features.14", "--target=7"], {"vgg11 (ImageNet)": "features.14"}, 7),
    (["--layer=resnet18=layer3", "--layer=vgg11=features.14", "--target=Tabby"],
     {"resnet18 (ImageNet)": "layer3", "vgg11 (ImageNet)": "features.14"}, "Tabby"),
    (["--target=topk"], None, "topk"),
])
def test_flags_reach_the_pipeline(run_main, image, monkeypatch, args, layers, target):
  """--layer becomes explain_images' layers (by model name), --target its target (digits: an
  index); the models are stand-ins, never run (the pipeline tests check the maps)."""
  received = {}

  def explain_images(paths, models, methods, out_dir, **kwargs):
    received.update(kwargs)
    return []

  monkeypatch.setattr(binary.model_loading, "pretrained_model",
                      lambda arch, weights: types.SimpleNamespace(name=f"{arch} (ImageNet)"))
  monkeypatch.setattr(binary.explain_image, "explain_images", explain_images)
  run_main(f"--image={image}", "--model=resnet18", "--model=vgg11", *args)
  assert received["layers"] == layers and received["target"] == target


@pytest.mark.parametrize("value,epsilon", [(None, None), ("2/255", 2 / 255), ("0.5", 0.5),
                                           ("1", 1.0)])
def test_fgsm_reaches_the_pipeline(run_main, image, monkeypatch, value, epsilon):
  received = {}
  monkeypatch.setattr(binary.model_loading, "pretrained_model",
                      lambda arch, weights: types.SimpleNamespace(name=arch))
  monkeypatch.setattr(binary.explain_image, "explain_images",
                      lambda *args, **kwargs: received.update(kwargs) or [])
  run_main(f"--image={image}", "--model=resnet18", *([f"--fgsm={value}"] if value else []))
  assert received["fgsm"] == epsilon


def test_a_checkpoint_with_its_fgsm_column(run_main, image, workdir, tmp_path):
  out_dir = tmp_path / "out"
  run_main(f"--image={image}", f"--checkpoint={workdir}", "--methods=gradcam", "--fgsm=4/255",
           f"--out_dir={out_dir}")
  summary = json.loads((out_dir / "predictions.json").read_text())
  name = "resnet18 (scratch, run)"
  attacked = f"FGSM {4 / 255:.3g}: {name}"
  assert summary["fgsm"] == 4 / 255 and list(summary["images"][0]["predictions"]) == [name,
                                                                                       attacked]
  with np.load(out_dir / "photo.npz") as arrays:
    change = np.abs(arrays[f"{attacked}/image"] - arrays[f"{name}/image"])
    # x + epsilon rounds once to float32 in [0, 1]: within half an ulp of 1.
    assert 0 < change.max() <= 4 / 255 + float_tolerance.EPS / 2
    assert arrays[f"{attacked}/gradcam"].shape == (32, 32)


@pytest.mark.parametrize("args,message", [
    (["--fgsm=2/0"], "--fgsm: expected a number or a fraction such as 2/255, got '2/0'"),
    (["--fgsm=two"], "--fgsm: expected a number or a fraction"),
    (["--fgsm=0"], r"--fgsm: expected an epsilon in \(0, 1\], got '0'"),
    (["--fgsm=3/2"], r"--fgsm: expected an epsilon in \(0, 1\]"),
    (["--layer=vgg=features.1"], r"--layer=vgg=features.1: 'vgg' is no --model or"
     r" --checkpoint value; they are \['resnet18'\]"),
    (["--layer=layer2", "--layer=layer3"], "give one LAYER for every model, or MODEL=LAYER"),
    (["--layer=layer2", "--layer=resnet18=layer3"], "give one LAYER for every model"),
    (["--layer=resnet18=layer2", "--layer=resnet18=layer3"], "MODEL=LAYER once per model"),
    (["--layer=resnet18="], "--layer=resnet18=: expected MODEL=LAYER or LAYER"),
    (["--target= "], "--target: target must not be an empty class name"),
])
def test_bad_flags_are_usage_errors(run_main, image, args, message):
  with pytest.raises(app.UsageError, match=message):
    run_main(f"--image={image}", "--model=resnet18", *args)


@pytest.mark.parametrize("args,message", [
    (["--layer=layer9"], r"error: layers: resnet18 \(scratch, run\): layer: expected a tap name"
     r" of this model .*'layer4'"),
    (["--target=squar"], r"error: target: no class of resnet18 \(scratch, run\) is named"
     rf" 'squar'.*close matches: 'square' \({CLASS_NAMES.index('square')}\)"),
    ([f"--target={len(CLASS_NAMES)}"],
     f"error: target: class {len(CLASS_NAMES)} is beyond the {len(CLASS_NAMES)} classes"),
])
def test_unknown_layers_and_classes_stop_before_any_model_runs(run_main, image, workdir,
                                                                tmp_path, monkeypatch, args,
                                                                message):
  monkeypatch.setattr(binary.explain_image, "top_k_classes", None)  # a model run would fail
  out_dir = tmp_path / "out"
  with pytest.raises(SystemExit, match=message):
    run_main(f"--image={image}", f"--checkpoint={workdir}", f"--out_dir={out_dir}", *args)
  assert not out_dir.exists()
