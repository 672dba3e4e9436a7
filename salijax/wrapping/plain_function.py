"""A plain function `f(images)` or `f(params, images)` as a wrapped model (no layers)."""

import dataclasses
from collections.abc import Callable
from typing import Any

import jax


@dataclasses.dataclass(frozen=True)
class PlainFunction:
  """(variables, inputs) -> f(inputs) or f(variables, inputs)."""

  fn: Callable[..., Any]
  takes_params: bool

  def __call__(self, variables: Any, inputs: jax.Array) -> Any:
    return self.fn(variables, inputs) if self.takes_params else self.fn(inputs)
