"""Tests of salijax.pipeline.commentary, alone and in explain_images, against a local stub."""

import base64
import json
import pathlib
import sys
import time
import types

import numpy as np
import pytest
from PIL import Image

from salijax.pipeline import commentary, explain_image
from salijax.pipeline.model_loading import LoadedModel

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "methods"))
import tiny_classifiers  # noqa: E402 - tests/methods, put on the path just above
from openai_stub import STUB_ANSWER, OpenAIStub  # noqa: E402 - tests/pipeline, on sys.path

KEY = "test-key"
FACTS = "Image file: cat.png\n"


def region_model():
  return LoadedModel(name="region", classifier=tiny_classifiers.region_classifier(
      32, 32, (8, 20, 4, 16)), class_names=("bright", "dark", "other"), image_size=32,
      crop_fraction=1.0)


@pytest.fixture
def endpoint(openai, monkeypatch):
  """endpoint(script) -> a running OpenAIStub, with OPENAI_API_KEY and OPENAI_BASE_URL set
  (the tests that talk to it need the openai package: the `openai` fixture)."""
  del openai
  stubs = []

  def start(script):
    stub = OpenAIStub(script).__enter__()
    stubs.append(stub)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", stub.base_url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    return stub

  yield start
  for stub in stubs:
    stub.__exit__(None, None, None)


@pytest.fixture
def sleeps(monkeypatch):
  """The backoff delays requested, in seconds (recorded, not slept: commentary's `time` only)."""
  delays = []
  monkeypatch.setattr(commentary, "time", types.SimpleNamespace(sleep=delays.append))
  return delays


@pytest.fixture
def panel(tmp_path):
  path = tmp_path / "cat.png"
  Image.fromarray(np.random.default_rng(0).integers(0, 256, (20, 30, 3), np.uint8)).save(path)
  return path


@pytest.fixture(scope="module")
def image_paths(tmp_path_factory):
  folder = tmp_path_factory.mktemp("images")
  rng = np.random.default_rng(1)
  paths = [folder / "first.png", folder / "second.png"]
  for path in paths:
    Image.fromarray(rng.integers(0, 256, (32, 32, 3), np.uint8)).save(path)
  return [str(path) for path in paths]


def image_part_png(request):
  (message,) = request["messages"]
  (image,) = [part for part in message["content"] if part["type"] == "image_url"]
  prefix = "data:image/png;base64,"
  assert image["image_url"]["url"].startswith(prefix)
  return base64.b64decode(image["image_url"]["url"].removeprefix(prefix), validate=True)


def text_parts(request):
  (message,) = request["messages"]
  assert message["role"] == "user"
  return [part["text"] for part in message["content"] if part["type"] == "text"]


def test_each_panel_gets_the_answer_and_the_request_carries_panel_prompt_and_facts(
    endpoint, image_paths, tmp_path):
  stub = endpoint([STUB_ANSWER])
  commentator = commentary.commentator("vision-model-x")
  records = explain_image.explain_images(image_paths, [region_model()], ["gradcam"], tmp_path,
                                         top_k=2, commentary=commentator)
  assert len(stub.requests) == 2 and stub.authorizations == [f"Bearer {KEY}"] * 2
  for record, request, path in zip(records, stub.requests, image_paths, strict=True):
    commentary_file = tmp_path / f"{record['stem']}.commentary.md"
    assert record["commentary"] == str(commentary_file) and record["commentary_error"] is None
    assert commentary_file.read_text() == STUB_ANSWER
    assert request["model"] == "vision-model-x"
    assert image_part_png(request) == pathlib.Path(record["panel"]).read_bytes()
    prompt, facts = text_parts(request)
    assert prompt == commentary.default_prompt()
    top = record["predictions"]["region"]
    assert facts.startswith(f"Image file: {pathlib.Path(path).name}\n")
    assert (f"- region: 1. {top[0]['name']} ({100 * top[0]['probability']:.1f} %);"
            f" 2. {top[1]['name']}") in facts
    assert "- gradcam (Grad-CAM): channels weighted by their mean gradient" in facts
  summary = json.loads((tmp_path / explain_image.PREDICTIONS_FILE).read_text())
  assert summary["commentary"]["model"] == "vision-model-x"
  assert summary["commentary"]["endpoint"].startswith(stub.base_url)
  assert not list(tmp_path.glob(".*"))  # no temporary files left

  # Explained again without commentary: the commentary on the old panels is removed.
  records = explain_image.explain_images(image_paths, [region_model()], ["gradcam"], tmp_path)
  assert not list(tmp_path.glob("*.commentary.md"))
  assert [record["commentary"] for record in records] == [None, None]


def test_a_failing_image_gets_an_error_note_and_the_others_keep_their_commentary(
    endpoint, sleeps, image_paths, tmp_path):
  stub = endpoint([STUB_ANSWER, "500"])  # the first request answered, then HTTP 500 forever
  commentator = commentary.commentator(retries=1, backoff_s=0.25)
  records = explain_image.explain_images(image_paths, [region_model()], ["gradcam"], tmp_path,
                                         commentary=commentator)
  assert len(stub.requests) == 3 and sleeps == [0.25]
  assert pathlib.Path(records[0]["commentary"]).read_text() == STUB_ANSWER
  assert records[0]["commentary_error"] is None
  error = records[1]["commentary_error"]
  assert error.startswith("after 2 attempts: InternalServerError:") and "500" in error
  note = pathlib.Path(records[1]["commentary"]).read_text()
  assert note.startswith(commentary.ERROR_MARKER + "\n")
  assert f"`{commentary.DEFAULT_MODEL}` at {stub.base_url}" in note and error in note
  assert pathlib.Path(records[1]["panel"]).stat().st_size > 0
  summary = json.loads((tmp_path / explain_image.PREDICTIONS_FILE).read_text())
  assert [image["commentary_error"] for image in summary["images"]] == [None, error]


def test_server_errors_are_retried_with_exponential_backoff(
endpoint, sleeps, panel):
  stub = endpoint(["500", "503", "429", STUB_ANSWER])
  commentator = commentary.commentator(retries=3, backoff_s=0.5)
  assert commentary.write_commentary(commentator, panel, FACTS) is None
  assert commentary.commentary_path(panel).read_text() == STUB_ANSWER
  assert len(stub.requests) == 4 and sleeps == [0.5, 1.0, 2.0]


def test_retries_run_out(
endpoint, sleeps, panel):
  stub = endpoint(["502", "502", STUB_ANSWER])
  commentator = commentary.commentator(retries=1, backoff_s=0.5)
  error = commentary.write_commentary(commentator, panel, FACTS)
  assert error.startswith("after 2 attempts: InternalServerError")
  assert len(stub.requests) == 2 and sleeps == [0.5]
  assert commentary.commentary_path(panel).read_text().startswith(commentary.ERROR_MARKER)


@pytest.mark.parametrize("status,error", [("401", "AuthenticationError"),
                                          ("400", "BadRequestError")])
def test_client_errors_are_not_retried(
endpoint, sleeps, panel, status, error):
  stub = endpoint([status, STUB_ANSWER])
  commentator = commentary.commentator(retries=3)
  message = commentary.write_commentary(commentator, panel, FACTS)
  assert message.startswith(f"after 1 attempt: {error}")
  assert len(stub.requests) == 1 and sleeps == []


def test_an_empty_answer_is_an_error(
endpoint, panel):
  endpoint(["  \n"])
  error = commentary.write_commentary(commentary.commentator(retries=0), panel, FACTS)
  assert error == "after 1 attempt: the answer has no text"


def test_a_request_that_times_out_is_retried_then_reported(
endpoint, sleeps, panel):
  """The stub answers after 3 s; each request may take 0.3 s (a bound with a 10x margin)."""
  stub = endpoint(["sleep:3", STUB_ANSWER])
  commentator = commentary.commentator(timeout_s=0.3, retries=1, backoff_s=0.0)
  assert commentary.write_commentary(commentator, panel, FACTS) is None
  assert commentary.commentary_path(panel).read_text() == STUB_ANSWER
  assert len(stub.requests) == 2 and sleeps == [0.0]

  stub = endpoint(["sleep:3"])
  commentator = commentary.commentator(timeout_s=0.3, retries=0)
  start = time.monotonic()
  error = commentary.write_commentary(commentator, panel, FACTS)
  assert time.monotonic() - start < 3
  assert error.startswith("after 1 attempt: APITimeoutError")
  assert commentary.commentary_path(panel).read_text().startswith(commentary.ERROR_MARKER)


def test_no_key_or_a_bad_endpoint_is_refused(monkeypatch):
  monkeypatch.delenv("OPENAI_API_KEY", raising=False)
  monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
  with pytest.raises(commentary.CommentaryUnavailable, match="OPENAI_API_KEY"):
    commentary.commentator()
  monkeypatch.setenv("OPENAI_API_KEY", "  ")
  with pytest.raises(commentary.CommentaryUnavailable, match="OPENAI_API_KEY"):
    commentary.commentator()
  monkeypatch.setenv("OPENAI_API_KEY", KEY)
  for url in ("localhost:8000/v1", "ftp://host/v1", "http://"):
    monkeypatch.setenv("OPENAI_BASE_URL", url)
    with pytest.raises(commentary.CommentaryUnavailable, match="OPENAI_BASE_URL must be an http"):
      commentary.commentator()
  monkeypatch.delenv("OPENAI_BASE_URL")
  monkeypatch.setitem(sys.modules, "openai", None)  # as if not installed
  with pytest.raises(commentary.CommentaryUnavailable, match="needs the openai package"):
    commentary.commentator()


def test_the_package_prompt_names_what_a_reader_needs():
  prompt = commentary.default_prompt()
  for topic in ("min-max normalised", "(a control)", "Where each model looks", "Agreement",
                "on the object", "What this cannot show"):
    assert topic in prompt


def test_bad_arguments(openai, monkeypatch, tmp_path, image_paths):
  del openai
  monkeypatch.setenv("OPENAI_API_KEY", KEY)
  monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
  for kwargs, message in [({"model": ""}, "model must be a non-empty"),
                          ({"prompt": " "}, "prompt must be a non-empty"),
                          ({"timeout_s": 0}, "timeout_s must be a finite number > 0"),
                          ({"backoff_s": float("nan")}, "backoff_s must be a finite number >= 0"),
                          ({"retries": -1}, "retries must be an int >= 0"),
                          ({"retries": 1.5}, "retries must be an int >= 0")]:
    with pytest.raises(ValueError, match=message):
      commentary.commentator(**kwargs)
  empty = tmp_path / "prompt.md"
  empty.write_text("\n")
  with pytest.raises(ValueError, match="is empty"):
    commentary.read_prompt(empty)
  with pytest.raises(ValueError, match="predictions must name at least one model"):
    commentary.panel_facts("cat.png", {}, ["gradcam"])
  with pytest.raises(TypeError, match="commentary must be None or a Commentator"):
    explain_image.explain_images(image_paths, [region_model()], ["gradcam"], tmp_path,
                                 commentary="gpt")
  assert commentary.commentary_path("out/cat.png") == pathlib.Path("out/cat.commentary.md")
