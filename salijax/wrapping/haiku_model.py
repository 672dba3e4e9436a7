"""A Haiku transformed function as a wrapped model, its layers named as in the params.

A layer is a module name ("conv2_d_1", "res_net18/~/block_group_2"); its
activation is that module's `__call__` output, read and replaced with
`hk.intercept_methods`. `hk.transform` (variables: params),
`hk.transform_with_state` (variables: (params, state)) and
`hk.without_apply_rng` are all taken; apply runs with no random key
(inference).
"""

import dataclasses
import inspect
from typing import Any

import jax

from salijax.wrapping.layer_capture import LayerCapture


def takes_rng(apply: Any) -> bool:
  """Whether a Haiku apply function takes an `rng` argument (not `without_apply_rng`)."""
  try:
    return "rng" in inspect.signature(apply).parameters
  except (TypeError, ValueError):
    return True


@dataclasses.dataclass(frozen=True)
class HaikuModel:
  """(variables, inputs) -> the transformed function's output (without the state)."""

  transformed: Any
  with_state: bool
  takes_rng: bool  # False for `hk.without_apply_rng`
  call_kwargs: tuple[tuple[str, Any], ...] = ()

  def __call__(self, variables: Any, inputs: jax.Array) -> Any:
    apply = self.transformed.apply
    rng = (None,) if self.takes_rng else ()
    kwargs = dict(self.call_kwargs)
    if self.with_state:
      params, state = variables
      output, _ = apply(params, state, *rng, inputs, **kwargs)
      return output
    return apply(variables, *rng, inputs, **kwargs)

  def at_layer(self, variables: Any, inputs: jax.Array, capture: LayerCapture) -> Any:
    """The forward pass with every module's `__call__` output shown to `capture`."""
    import haiku as hk  # noqa: PLC0415 (only for Haiku models, which imported it)

    def interceptor(next_fun, args, kwargs, context):
      output = next_fun(*args, **kwargs)
      if context.method_name != "__call__":
        return output
      return capture.visit(context.module.module_name, output)

    with hk.intercept_methods(interceptor):
      return self(variables, inputs)
