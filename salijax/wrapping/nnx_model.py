"""A Flax NNX module as a wrapped model, its layers named by attribute paths.

The Classifier's variables are the module's state (`nnx.split`), so it stays
a pure pytree that `jax.jit` traces; each call merges a fresh copy of the
module (in evaluation mode: `.eval()`, no dropout, BatchNorm running
statistics) and, to read a layer, puts a tap object in the layer's place on
that copy. A layer is a `.`-path of attributes and indices ("conv2",
"blocks.3", "encoder.layers.11").
"""

import dataclasses
from typing import Any

import jax
from flax import nnx

from salijax.wrapping.layer_capture import LayerCapture


def parse_path(layer: str) -> tuple[str | int, ...]:
  """"blocks.3.conv" -> ("blocks", 3, "conv")."""
  return tuple(int(part) if part.isdigit() else part for part in layer.split("."))


def module_names(module: nnx.Module) -> list[str]:
  """The `.`-paths of every submodule of `module`, in graph order."""
  return [".".join(map(str, path)) for path, node in nnx.iter_graph(module)
          if path and isinstance(node, nnx.Module)]


def _child(parent: Any, part: str | int) -> Any:
  return parent[part] if isinstance(part, int) else getattr(parent, part)


def find_layer(module: nnx.Module, layer: str) -> Any:
  """The submodule at `layer`; ValueError listing the names if there is none."""
  node = module
  try:
    for part in parse_path(layer):
      node = _child(node, part)
  except (AttributeError, IndexError, KeyError, TypeError):
    node = None
  if not callable(node):
    names = module_names(module)
    shown = names if len(names) <= 8 else names[:4] + ["..."] + names[-4:]
    raise ValueError(
        f"layer: {layer!r} is not a submodule of this model ({len(names)} submodules: "
        f"{', '.join(shown)}; salijax.wrapping.layer_names lists them all)")
  return node


class _Tap:
  """Calls the layer and shows its output to the capture."""

  def __init__(self, layer: Any, capture: LayerCapture):
    self.layer = layer
    self.capture = capture

  def __call__(self, *args: Any, **kwargs: Any) -> Any:
    return self.capture.reached(self.layer(*args, **kwargs))


@dataclasses.dataclass(frozen=True)
class NnxModel:
  """(state, inputs) -> the module's output; `layer` a `.`-path or None."""

  graphdef: Any
  layer: str | None = None
  eval_mode: bool = True

  def _module(self, state: Any) -> nnx.Module:
    # copy=True: Variables of this trace level, so that NNX transforms inside the model
    # (nnx.scan, nnx.vmap) accept them under jax.grad.
    module = nnx.merge(self.graphdef, state, copy=True)
    if self.eval_mode:
      module.eval()
    return module

  def __call__(self, variables: Any, inputs: jax.Array) -> Any:
    return self._module(variables)(inputs)

  def at_layer(self, variables: Any, inputs: jax.Array, capture: LayerCapture) -> Any:
    """The forward pass with the layer's output shown to `capture`."""
    module = self._module(variables)
    *parents, last = parse_path(self.layer)
    parent = module
    for part in parents:
      parent = _child(parent, part)
    tap = _Tap(_child(parent, last), capture)
    if isinstance(last, int):
      parent[last] = tap
    else:
      setattr(parent, last, tap)
    return module(inputs)
