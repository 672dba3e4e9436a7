"""Tests of the experiments.explain_image binary: main() in-process on a tiny checkpoint, errors."""

import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from absl import app, flags
from PIL import Image

from experiments import explain_image as binary

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "pipeline"))
from tiny_workdir import CLASS_NAMES, make_tiny_workdir  # noqa: E402 - just above


@pytest.fixture
def image(tmp_path):
  path = tmp_path / "photo.png"
  Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 56, 3), np.uint8)).save(path)
  return path


def test_explains_an_image_with_a_checkpoint(run_main, image, tmp_path, capsys):
  workdir = tmp_path / "run"
  make_tiny_workdir(workdir)
  out_dir = tmp_path / "out"
  run_main(f"--image={image}", f"--checkpoint={workdir}", "--methods=gradcam,rise",
           "--num_masks=8", "--lime_samples=4", "--top_k=2", "--seed=5", f"--out_dir={out_dir}")
  predictions = json.loads((out_dir / "predictions.json").read_text())
  assert predictions["seed"] == 5 and predictions["methods"] == ["gradcam", "rise"]
  assert predictions["method_options"] == {"rise": {"num_masks": 8}}  # no LIME: no options
  name = "resnet18 (scratch, run)"
  (record,) = predictions["images"]
  assert [entry["name"] in CLASS_NAMES for entry in record["predictions"][name]] == [True] * 2
  with np.load(out_dir / "photo.npz") as arrays:
    assert arrays[f"{name}/image"].shape == (32, 32, 3)
    assert arrays[f"{name}/rise"].shape == (32, 32)
  assert (out_dir / "photo.png").stat().st_size > 0
  printed = capsys.readouterr().out
  assert str(out_dir / "photo.png") in printed
  assert str(out_dir / "index.html") in printed
  assert '<img src="photo.png"' in (out_dir / "index.html").read_text()


@pytest.mark.parametrize("args,class_model,options", [
    ([], False, {}),
    (["--class_model"], True, {}),
    (["--class_model", "--class_model_steps=4", "--class_model_l2=0.02"], True,
     {"steps": 4, "l2": 0.02}),
])
def test_class_model_flags_reach_the_pipeline(run_main, image, monkeypatch, args, class_model,
                                              options):
  """The flags become explain_images' class_model and class_model_options (the pipeline tests
  check what it draws and stores with them); the model is a stand-in, never run."""
  received = {}

  def explain_images(paths, models, methods, out_dir, **kwargs):
    received.update(kwargs, models=models)
    return []

  monkeypatch.setattr(binary.model_loading, "pretrained_model", lambda arch, weights: arch)
  monkeypatch.setattr(binary.explain_image, "explain_images", explain_images)
  run_main(f"--image={image}", "--model=resnet18", *args)
  assert received["models"] == ["resnet18"]
  assert received["class_model"] is class_model
  assert received["class_model_options"] == options


@pytest.mark.parametrize("args,message", [
    (["--model=resnet18", "--methods=gradcam,nope"], r"unknown \['nope'\].*'gradcam'"),
    (["--model=resnet19"], r"--model: unknown \['resnet19'\]"),
    ([], "give at least one --model or --checkpoint"),
    (["--model=resnet18", "extra"], r"unexpected arguments: \['extra'\]"),
    (["--model=resnet18", "--class_model_steps=5"],
     "--class_model_steps and --class_model_l2 need --class_model"),
])
def test_bad_flags_are_usage_errors(run_main, image, args, message):
  with pytest.raises(app.UsageError, match=message):
    run_main(f"--image={image}", *args)


def test_flags_that_absl_rejects(run_main, image):
  with pytest.raises(flags.IllegalFlagValueError, match="image"):
    run_main("--model=resnet18")
  with pytest.raises(flags.IllegalFlagValueError, match="top_k"):
    run_main(f"--image={image}", "--model=resnet18", "--top_k=0")
  with pytest.raises(flags.IllegalFlagValueError, match="class_model_l2"):
    run_main(f"--image={image}", "--model=resnet18", "--class_model", "--class_model_l2=-1")


def test_runtime_errors_exit_with_a_message(run_main, image, tmp_path):
  with pytest.raises(SystemExit, match="error: 1 of the 2 images cannot be read:\n  .*absent"):
    run_main(f"--image={image}", f"--image={tmp_path / 'absent.jpg'}", "--model=resnet18")
  with pytest.raises(SystemExit, match="error: workdir: no training run in"):
    run_main(f"--image={image}", f"--checkpoint={tmp_path}")


def test_command_line_error_has_no_traceback(tmp_path):
  result = subprocess.run(
      [sys.executable, "-m", "experiments.explain_image", f"--image={tmp_path / 'absent.png'}",
       "--model=resnet18"], cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
  assert result.returncode == 1
  assert "error: 1 of the 1 images cannot be read" in result.stderr
  assert "absent.png: no such file" in result.stderr
  assert "Traceback" not in result.stderr
