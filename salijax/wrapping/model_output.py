"""Picking the logits f32[B,K] out of whatever a model returns.

`output` says where they are: None (the model returns them), a string (a
dict key, or an attribute of a dataclass or named tuple), an int (a tuple
index) or a function of the model's output.
"""

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

OutputPick = str | int | Callable[[Any], Any] | None


def _describe(value: Any) -> str:
  if isinstance(value, Mapping):
    return f"a dict with keys {sorted(map(str, value))}"
  if isinstance(value, tuple | list):
    return f"a {type(value).__name__} of {len(value)}"
  shape = getattr(value, "shape", None)
  return f"an array of shape {tuple(shape)}" if shape is not None else type(value).__name__


@dataclasses.dataclass(frozen=True)
class ModelOutput:
  """model output -> logits f32[B,K] (see the module doc); checks the result's shape."""

  pick: OutputPick = None

  def __call__(self, output: Any) -> Any:
    logits = output
    if isinstance(self.pick, str):
      if isinstance(output, Mapping):
        if self.pick not in output:
          raise ValueError(f"output: {self.pick!r} is not a key of the model's output, "
                           f"{_describe(output)}")
        logits = output[self.pick]
      elif hasattr(output, self.pick):
        logits = getattr(output, self.pick)
      else:
        raise ValueError(f"output: the model's output, {_describe(output)}, has no "
                         f"{self.pick!r}")
    elif isinstance(self.pick, int):
      if not isinstance(output, tuple | list) or not -len(output) <= self.pick < len(output):
        raise ValueError(f"output: index {self.pick} does not pick from the model's output, "
                         f"{_describe(output)}")
      logits = output[self.pick]
    elif self.pick is not None:
      logits = self.pick(output)
    if getattr(logits, "ndim", None) != 2:
      raise ValueError(
          f"the model's logits must be [B, K], got {_describe(logits)}"
          + ("" if self.pick is not None else
             "; if the model returns several things, pick the logits with output=..."))
    return logits
