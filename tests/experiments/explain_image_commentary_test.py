"""Tests of experiments.explain_image's --commentary flags: main() in-process, a tiny stand-in
model, a local OpenAI-compatible stub server."""

import json
import os
import pathlib
import sys

import jax
import numpy as np
import pytest
from absl import app, flags
from PIL import Image

from experiments import explain_image as binary
from salijax import cpu_convolutions
from salijax.pipeline import commentary
from salijax.pipeline.model_loading import LoadedModel

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "pipeline"))
sys.path.insert(0, str(REPO / "tests" / "methods"))
import tiny_classifiers  # noqa: E402 - tests/methods, on the path just above
from openai_stub import STUB_ANSWER, OpenAIStub  # noqa: E402 - tests/pipeline, likewise


@pytest.fixture
def image(tmp_path):
  path = tmp_path / "photo.png"
  Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 56, 3), np.uint8)).save(path)
  return path


@pytest.fixture
def tiny_models(monkeypatch):
  """--model=NAME loads a random CNN named NAME (at 32 px) instead of torchvision's weights."""
  def pretrained_model(arch, weights):
    del weights
    return LoadedModel(arch, tiny_classifiers.random_cnn(jax.random.key(0)),
                       ("ant", "bee", "cat", "dog"), 32, 1.0)
  monkeypatch.setattr(binary.model_loading, "pretrained_model", pretrained_model)


@pytest.fixture
def no_models(monkeypatch):
  """Loading a model fails the test: proves that the run stopped before any model."""
  def pretrained_model(arch, weights):
    raise AssertionError(f"model {arch} loaded")
  monkeypatch.setattr(binary.model_loading, "pretrained_model", pretrained_model)


@pytest.fixture
def no_key(monkeypatch):
  monkeypatch.delenv("OPENAI_API_KEY", raising=False)
  monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


@pytest.fixture
def endpoint(openai, monkeypatch):
  """endpoint(script) -> a running OpenAIStub, with OPENAI_API_KEY and OPENAI_BASE_URL set
  (the tests that talk to it need the openai package: the `openai` fixture)."""
  del openai
  stubs = []

  def start(script):
    stub = OpenAIStub(script).__enter__()
    stubs.append(stub)
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    monkeypatch.setenv("OPENAI_BASE_URL", stub.base_url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    return stub

  yield start
  for stub in stubs:
    stub.__exit__(None, None, None)


def test_on_without_a_key_stops_before_any_model_runs(run_main, image, tmp_path, no_key,
                                                      no_models):
  out_dir = tmp_path / "out"
  with pytest.raises(SystemExit, match="error: --commentary=on: commentary needs the environment"
                     " variable OPENAI_API_KEY.*--commentary=optional goes on without"):
    run_main(f"--image={image}", "--model=resnet18", "--commentary=on", f"--out_dir={out_dir}")
  assert not out_dir.exists()


def test_optional_without_a_key_still_writes_the_panels(run_main, image, tmp_path, no_key,
                                                        tiny_models, capsys):
  out_dir = tmp_path / "out"
  run_main(f"--image={image}", "--model=resnet18", "--methods=gradcam", "--commentary=optional",
           f"--out_dir={out_dir}")
  assert "warning: commentary skipped: commentary needs the environment variable" \
      " OPENAI_API_KEY" in capsys.readouterr().err
  assert (out_dir / "photo.png").stat().st_size > 0
  assert not (out_dir / "photo.commentary.md").exists()
  summary = json.loads((out_dir / "predictions.json").read_text())
  assert summary["commentary"] is None and summary["images"][0]["commentary"] is None


def test_commentary_with_the_flags_retries_and_writes_the_answer(run_main, image, tmp_path,
                                                                 endpoint, tiny_models, capsys):
  stub = endpoint(["503", STUB_ANSWER])
  prompt = tmp_path / "my_prompt.md"
  prompt.write_text("Say where the maps of the two models differ.\n")
  out_dir = tmp_path / "out"
  run_main(f"--image={image}", "--model=resnet18", "--model=vgg11", "--methods=gradcam",
           "--commentary=on", "--commentary_model=local-vlm", f"--commentary_prompt={prompt}",
           "--commentary_retries=1", "--commentary_backoff=0", "--commentary_timeout=30",
           f"--out_dir={out_dir}")
  assert (out_dir / "photo.commentary.md").read_text() == STUB_ANSWER
  assert len(stub.requests) == 2
  request = stub.requests[1]
  assert request["model"] == "local-vlm"
  texts = [part["text"] for part in request["messages"][0]["content"] if part["type"] == "text"]
  assert texts[0] == prompt.read_text()
  assert "- resnet18: 1. " in texts[1] and "- vgg11: 1. " in texts[1]
  assert str(out_dir / "photo.commentary.md") in capsys.readouterr().out


@pytest.mark.parametrize("mode", ["on", "optional"])
def test_a_failed_commentary_is_reported_after_every_file_is_written(
    run_main, image, tmp_path, endpoint, tiny_models, capsys, mode):
  endpoint(["500"])
  out_dir = tmp_path / "out"
  args = (f"--image={image}", "--model=resnet18", "--methods=gradcam", f"--commentary={mode}",
          "--commentary_retries=0", f"--out_dir={out_dir}")
  expected = r"commentary failed for 1 of the 1 images \(notes in their .commentary.md\):\n  "
  if mode == "on":
    with pytest.raises(SystemExit, match=f"error: {expected}.*photo.png: after 1 attempt"):
      run_main(*args)
  else:
    run_main(*args)
    assert "warning: commentary failed for 1 of the 1 images" in capsys.readouterr().err
  assert (out_dir / "photo.png").stat().st_size > 0
  assert (out_dir / "predictions.json").exists()
  note = (out_dir / "photo.commentary.md").read_text()
  assert note.startswith(commentary.ERROR_MARKER) and "InternalServerError" in note


def test_show_commentary_prompt_prints_it_and_exits(run_main, tmp_path, no_models, capsys):
  run_main("--show_commentary_prompt")
  assert capsys.readouterr().out == commentary.default_prompt()
  prompt = tmp_path / "my_prompt.md"
  prompt.write_text("Mine.\n")
  run_main("--show_commentary_prompt", f"--commentary_prompt={prompt}")
  assert capsys.readouterr().out == "Mine.\n"


def test_main_hands_ynnpack_the_dots_only_unless_xla_flags_choose(run_main, monkeypatch,
                                                                  no_models, capsys):
  monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_max_isa=AVX2")
  run_main("--show_commentary_prompt")
  assert os.environ["XLA_FLAGS"] == f"--xla_cpu_max_isa=AVX2 {cpu_convolutions.DOTS_ONLY_FLAG}"
  monkeypatch.setenv("XLA_FLAGS", cpu_convolutions.YNNPACK_CONVOLUTIONS_FLAG)
  run_main("--show_commentary_prompt")
  assert os.environ["XLA_FLAGS"] == cpu_convolutions.YNNPACK_CONVOLUTIONS_FLAG
  assert capsys.readouterr().out == 2 * commentary.default_prompt()


@pytest.mark.parametrize("args,message", [
    (["--commentary_model=x", "--commentary_retries=1"],
     "--commentary_model, --commentary_retries need --commentary=on or --commentary=optional"),
    (["--commentary=on", "--commentary_prompt=/absent/prompt.md"],
     "--commentary_prompt: .*No such file"),
    (["--commentary=on", "--commentary_model= "], "model must be a non-empty model name"),
])
def test_bad_commentary_flags_are_usage_errors(run_main, image, no_models, args, message):
  with pytest.raises(app.UsageError, match=message):
    run_main(f"--image={image}", "--model=resnet18", *args)


def test_flags_that_absl_rejects(run_main, image):
  with pytest.raises(flags.IllegalFlagValueError, match="--image is required"):
    run_main("--model=resnet18")
  with pytest.raises(flags.IllegalFlagValueError, match="commentary_timeout"):
    run_main(f"--image={image}", "--model=resnet18", "--commentary=on", "--commentary_timeout=0")
  with pytest.raises(flags.IllegalFlagValueError, match="commentary"):
    run_main(f"--image={image}", "--model=resnet18", "--commentary=maybe")
