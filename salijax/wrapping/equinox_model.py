"""An Equinox module as a wrapped model, its layer picked as `eqx.tree_at` picks one.

The Classifier's variables are the module's arrays (`eqx.partition`), the rest
is static. `layer` is a function from the module to the submodule
(`lambda m: m.layers[3]`); to read it, a copy of the module has a tap in its
place (`eqx.tree_at`). `batched=False` (the Equinox convention) says the
module maps one image, so salijax `jax.vmap`s it over the batch; layers are
then channel-first [c, h, w] per image unless said otherwise.
"""

import dataclasses
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax

from salijax.wrapping.layer_capture import LayerCapture


class _Tap(eqx.Module):
  """Calls the layer and shows its output to the capture."""

  layer: Any
  capture: LayerCapture = eqx.field(static=True)

  def __call__(self, *args: Any, **kwargs: Any) -> Any:
    return self.capture.reached(self.layer(*args, **kwargs))


@dataclasses.dataclass(frozen=True)
class EquinoxModel:
  """(arrays, inputs) -> the module's output, vmapped over images unless `batched`."""

  static: Any
  layer: Callable[[Any], Any] | None = None
  batched: bool = False

  def _run(self, module: Any, inputs: jax.Array) -> Any:
    return module(inputs) if self.batched else jax.vmap(module)(inputs)

  def __call__(self, variables: Any, inputs: jax.Array) -> Any:
    return self._run(eqx.combine(variables, self.static), inputs)

  def at_layer(self, variables: Any, inputs: jax.Array, capture: LayerCapture) -> Any:
    """The forward pass with the layer's output shown to `capture`."""
    module = eqx.combine(variables, self.static)
    if self.batched:
      tapped = eqx.tree_at(self.layer, module, replace_fn=lambda layer: _Tap(layer, capture))
      return tapped(inputs)

    def one_image(image, replacement):
      inner = LayerCapture(capture.mapping, replacement)
      tapped = eqx.tree_at(self.layer, module, replace_fn=lambda layer: _Tap(layer, inner))
      output = tapped(image)
      return output, inner.activation_reached()

    output, activation = jax.vmap(one_image)(inputs, capture.replacement)
    capture.record(activation)
    return output
