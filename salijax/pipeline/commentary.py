"""A language model's commentary on an explanation panel, from an OpenAI-compatible endpoint.

    from salijax.pipeline import commentary
    commentator = commentary.commentator("gpt-4o-mini")  # reads OPENAI_API_KEY, OPENAI_BASE_URL
    facts = commentary.panel_facts("cat.jpg", record["predictions"], ["gradcam", "rise"])
    error = commentary.write_commentary(commentator, "explanations/cat.png", facts)

One chat completions request per panel, with one user message of three parts:
the prompt (`default_prompt()`, the file commentary_prompt.md next to this
module, or one's own), the facts (`panel_facts`: the image's file name, each
model's top-k with probabilities, each method's one-line summary) and the
panel PNG as a base64 data URL image part. The answer, Markdown, is written
atomically to `<stem>.commentary.md` next to the panel (`commentary_path`) as
soon as it arrives.

Connection errors, timeouts (`timeout_s` per request) and HTTP 408, 409, 429
and 5xx answers are retried up to `retries` times, after backoff_s,
2 backoff_s, 4 backoff_s, ... seconds; other errors (401, 400, ...) are not.
A panel whose request still fails gets an error note in its commentary file
instead (ERROR_MARKER on the first line, then the endpoint, model, attempts
and last error).

Privacy: the panel (the image as each model saw it, the maps, the top-k) and
the image's file name are sent to the endpoint.
"""

import base64
import dataclasses
import math
import os
import pathlib
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any

from absl import logging

from salijax import atomic_files
from salijax import methods as methods_lib

DEFAULT_MODEL = "gpt-4o-mini"  # OpenAI's small vision model; local servers may ignore the name
DEFAULT_TIMEOUT_S = 120.0
DEFAULT_RETRIES = 3
DEFAULT_BACKOFF_S = 2.0
PROMPT_FILE = pathlib.Path(__file__).with_name("commentary_prompt.md")
SUFFIX = ".commentary.md"
ERROR_MARKER = "<!-- salijax: commentary failed -->"  # first line of a failed commentary's note
RETRIED_STATUSES = (408, 409, 429)  # and every 5xx: the statuses the openai client retries


class CommentaryUnavailable(RuntimeError):
  """No commentary can be asked for: no API key, a bad OPENAI_BASE_URL or no openai package."""


class CommentaryError(RuntimeError):
  """A panel's request failed after its retries (or with an error not worth retrying)."""


@dataclasses.dataclass(frozen=True)
class Commentator:
  """The language model to ask and how; `commentator` builds one."""

  client: Any  # an openai.OpenAI holding the endpoint, the key and timeout_s, without retries
  model: str
  prompt: str
  timeout_s: float
  retries: int
  backoff_s: float

  @property
  def endpoint(self) -> str:
    return str(self.client.base_url)


def default_prompt() -> str:
  """salijax's prompt (commentary_prompt.md): what the panel shows and what to comment on."""
  return PROMPT_FILE.read_text(encoding="utf-8")


def read_prompt(path: str | os.PathLike) -> str:
  """The prompt in the UTF-8 text file `path`; OSError if unreadable, ValueError if empty."""
  text = pathlib.Path(path).read_text(encoding="utf-8")
  if not text.strip():
    raise ValueError(f"commentary prompt {path} is empty")
  return text


def commentary_path(panel: str | os.PathLike) -> pathlib.Path:
  """Where the commentary on `panel` (".../<stem>.png") goes: ".../<stem>.commentary.md"."""
  panel = pathlib.Path(panel)
  return panel.with_name(panel.stem + SUFFIX)


def _check_number(value: Any, name: str, *, positive: bool) -> None:
  ok = (not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)
        and (value > 0 if positive else value >= 0))
  if not ok:
    raise ValueError(f"{name} must be a finite number {'> 0' if positive else '>= 0'},"
                     f" got {value!r}")


def commentator(model: str = DEFAULT_MODEL, *, prompt: str | None = None,
                timeout_s: float = DEFAULT_TIMEOUT_S, retries: int = DEFAULT_RETRIES,
                backoff_s: float = DEFAULT_BACKOFF_S) -> Commentator:
  """A Commentator for `model` at the endpoint of the environment.

  Args:
    model: the model name sent in each request.
    prompt: the prompt text; None: `default_prompt()`.
    timeout_s: seconds one request may take.
    retries: how many times a failed request is repeated (module doc).
    backoff_s: the wait before the first retry; it doubles with each retry.

  Environment: OPENAI_API_KEY (required; any non-empty value for a local
  server that ignores it) and OPENAI_BASE_URL (optional, e.g.
  http://localhost:8000/v1; default the openai package's, OpenAI's API).

  Raises:
    CommentaryUnavailable: OPENAI_API_KEY unset or empty, OPENAI_BASE_URL not
      an http(s) URL, or the openai package missing.
    ValueError: an empty model or prompt, bad timeout_s, retries or backoff_s.
  """
  if not isinstance(model, str) or not model.strip():
    raise ValueError(f"model must be a non-empty model name, got {model!r}")
  if prompt is None:
    prompt = default_prompt()
  if not isinstance(prompt, str) or not prompt.strip():
    raise ValueError(f"prompt must be a non-empty text, got {prompt!r}")
  _check_number(timeout_s, "timeout_s", positive=True)
  if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
    raise ValueError(f"retries must be an int >= 0, got {retries!r}")
  _check_number(backoff_s, "backoff_s", positive=False)
  key = os.environ.get("OPENAI_API_KEY", "").strip()
  if not key:
    raise CommentaryUnavailable(
        "commentary needs the environment variable OPENAI_API_KEY (for a local server that"
        " needs no key, any non-empty value) and, for an endpoint other than OpenAI's,"
        " OPENAI_BASE_URL (e.g. http://localhost:8000/v1)")
  base_url = os.environ.get("OPENAI_BASE_URL", "").strip() or None
  if base_url is not None:
    parts = urllib.parse.urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
      raise CommentaryUnavailable(f"OPENAI_BASE_URL must be an http(s) URL such as"
                                  f" http://localhost:8000/v1, got {base_url!r}")
  try:
    import openai  # noqa: PLC0415 - optional: only commentary needs it
  except ImportError:
    raise CommentaryUnavailable("commentary needs the openai package: pip install 'openai>=1.0'"
                                " (in salijax's benchmark extra)") from None
  client = openai.OpenAI(api_key=key, base_url=base_url, timeout=timeout_s, max_retries=0)
  return Commentator(client, model, prompt, float(timeout_s), retries, float(backoff_s))


def panel_facts(title: str, predictions: Mapping[str, Sequence[Mapping[str, Any]]],
                methods: Sequence[str], class_model: bool = False,
                explained: Mapping[str, Sequence[Mapping[str, Any]]] | None = None) -> str:
  """The text sent with a panel: its image's name, each model's top-k, each method's summary.

  Args:
    title: the image's file name (the panel's title).
    predictions: model name -> its top-k, [{"name": class name, "probability": p}, ...]
      (`explain_image.top_k_classes`), in the panel's column order.
    methods: the registered method names of the panel's rows, in order.
    class_model: whether the panel has the class model row.
    explained: model name -> the classes its maps explain ({"name",
      "probability"}, the map rows' classes in order), or None: each model's top-1.
  """
  if not predictions:
    raise ValueError("predictions must name at least one model")
  lines = [f"Image file: {title}", "",
           "Models (the panel's columns, left to right) and their top classes:"]
  for model, ranked in predictions.items():
    classes = "; ".join(f"{rank}. {entry['name']} ({100 * entry['probability']:.1f} %)"
                        for rank, entry in enumerate(ranked, start=1))
    lines.append(f"- {model}: {classes}")
  if explained is None:
    if class_model:
      lines += ["", "The row under the images is each model's class model of its top-1 class."]
    lines += ["", "Methods (the map rows, top to bottom), each explaining its column's top-1"
              " class:"]
  else:
    lines += ["", "The classes whose maps are shown (written under each map), per model:"]
    lines += [f"- {model}: " + "; ".join(f"{entry['name']} ({100 * entry['probability']:.1f} %)"
                                        for entry in classes)
              for model, classes in explained.items()]
    if class_model:
      lines += ["", "The row under the images is each model's class model of its first"
                " explained class."]
    lines += ["", "Methods (in the map rows, top to bottom), each explaining the class written"
              " under its map:"]
  for method in methods:
    info = methods_lib.info(method)
    lines.append(f"- {method} ({info.title}): {info.summary}")
  return "\n".join(lines) + "\n"


def request_messages(prompt: str, facts: str, panel_png: bytes) -> list[dict[str, Any]]:
  """The chat messages of one request: a user message of the prompt, the facts and the panel."""
  url = "data:image/png;base64," + base64.b64encode(panel_png).decode("ascii")
  return [{"role": "user", "content": [
      {"type": "text", "text": prompt},
      {"type": "text", "text": facts},
      {"type": "image_url", "image_url": {"url": url, "detail": "high"}}]}]


def _retried(error: Exception) -> bool:
  import openai  # noqa: PLC0415 - optional, imported by `commentator` already
  if isinstance(error, openai.APIConnectionError):  # timeouts included
    return True
  return isinstance(error, openai.APIStatusError) and (
      error.status_code in RETRIED_STATUSES or error.status_code >= 500)


def request_commentary(commentator: Commentator, panel_png: bytes, facts: str) -> str:
  """The model's answer on one panel (PNG bytes), retried as the module doc says.

  Raises:
    CommentaryError: the last attempt's error, or an answer without text.
  """
  import openai  # noqa: PLC0415 - optional, imported by `commentator` already
  messages = request_messages(commentator.prompt, facts, panel_png)
  attempt = 0
  while True:
    attempt += 1
    try:
      response = commentator.client.chat.completions.create(model=commentator.model,
                                                            messages=messages)
    except openai.OpenAIError as error:
      if attempt > commentator.retries or not _retried(error):
        raise CommentaryError(f"after {attempt} attempt{'s' * (attempt > 1)}:"
                              f" {type(error).__name__}: {error}") from error
      delay = commentator.backoff_s * 2 ** (attempt - 1)
      logging.warning("commentary: attempt %d of %d failed (%s); retrying in %.1f s", attempt,
                      commentator.retries + 1, error, delay)
      time.sleep(delay)
      continue
    text = response.choices[0].message.content if response.choices else None
    if not text or not text.strip():
      raise CommentaryError(f"after {attempt} attempt{'s' * (attempt > 1)}: the answer has no"
                            " text")
    return text


def error_note(commentator: Commentator, error: CommentaryError) -> str:
  """The Markdown written in place of a failed commentary: ERROR_MARKER, then what failed."""
  quoted = "\n".join("    " + line for line in str(error).splitlines())
  return (f"{ERROR_MARKER}\n**No commentary**: the language model `{commentator.model}` at"
          f" {commentator.endpoint} failed:\n\n{quoted}\n")


def write_commentary(commentator: Commentator, panel: str | os.PathLike,
                     facts: str) -> str | None:
  """Asks for the commentary on `panel` (a PNG) and writes it to `commentary_path(panel)`.

  Returns:
    None, or the error message when the request failed (the file then holds
    `error_note`).
  """
  path = commentary_path(panel)
  try:
    text = request_commentary(commentator, pathlib.Path(panel).read_bytes(), facts)
  except CommentaryError as error:
    logging.warning("commentary on %s failed %s", panel, error)
    atomic_files.write_text_atomic(path, error_note(commentator, error))
    return str(error)
  atomic_files.write_text_atomic(path, text)
  return None
