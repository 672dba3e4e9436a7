"""A Flax linen module as a wrapped model, its layers named by their `/`-paths.

A layer is a submodule's path as in the variables ("Conv_1",
"backbone/stage4"); its activation is that submodule's `__call__` output,
read and replaced with Flax's `nn.intercept_methods`, so the user's module is
not changed.
"""

import dataclasses
from typing import Any

import flax.linen as nn
import jax

from salijax.wrapping.layer_capture import LayerCapture


@dataclasses.dataclass(frozen=True)
class LinenModel:
  """(variables, inputs) -> the module's output; `call_kwargs` as (name, value) pairs."""

  module: nn.Module
  call_kwargs: tuple[tuple[str, Any], ...] = ()

  def __call__(self, variables: Any, inputs: jax.Array) -> Any:
    return self.module.apply(variables, inputs, **dict(self.call_kwargs))

  def at_layer(self, variables: Any, inputs: jax.Array, capture: LayerCapture) -> Any:
    """The forward pass with every submodule's `__call__` output shown to `capture`."""

    def interceptor(next_fun, args, kwargs, context):
      output = next_fun(*args, **kwargs)
      path = context.module.path
      if context.method_name != "__call__" or not path:
        return output
      return capture.visit("/".join(path), output)

    with nn.intercept_methods(interceptor):
      return self(variables, inputs)
