"""Reading and replacing one layer's output during a forward pass of any JAX model.

Each framework adapter (`salijax.wrapping.linen_model`, ...) runs the model's
forward pass with an interceptor that hands every submodule output to a
`LayerCapture`: `visit(name, output)` for frameworks whose layers have names
(Flax linen, Haiku), `reached(output)` for a layer picked by reference (Flax
NNX, Equinox). The capture records the layer's activation and, for a head,
returns the replacement in its place, so the rest of the network, and only
that, sees the replacement: a residual block's skip path keeps the value it
computes from the images.

The activation is converted to a map f32[B,h,w,c] by `ActivationMap`: as is
for channel-last layers, transposed for channel-first ones, and for token
layers [B,N,C] (vision transformers) with the first `prefix_tokens` tokens
(class, register) dropped and the rest reshaped to a square grid. A
replacement map is spliced back the other way, with the dropped tokens kept
from the forward pass.
"""

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp

LAYOUTS = ("NHWC", "NCHW")


@dataclasses.dataclass(frozen=True)
class ActivationMap:
  """How a layer's activation becomes a map f32[...,h,w,c] and back.

  Both directions act on the trailing axes, so they serve a batch [B,...] and,
  inside `jax.vmap`, one image alike; `batch_dims` says which it is in errors.
  """

  layer: str
  layout: str = "NHWC"
  prefix_tokens: int | None = None

  def _kind(self, activation: jax.Array, batch_dims: int) -> str:
    rank = activation.ndim - batch_dims
    if rank == 3:
      return "image"
    if rank == 2:
      if self.prefix_tokens is None:
        hint = ""
        count = activation.shape[-2]
        if math.isqrt(count - 1) ** 2 == count - 1:
          hint = f" ({count} = 1 + {math.isqrt(count - 1)}^2: prefix_tokens=1 for a class token)"
        raise ValueError(
            f"layer {self.layer!r} gives tokens of shape {tuple(activation.shape)}: say how "
            f"many leading (class, register) tokens to drop with prefix_tokens={hint}")
      grid = activation.shape[-2] - self.prefix_tokens
      side = math.isqrt(max(grid, 0))
      if grid < 1 or side * side != grid:
        raise ValueError(
            f"layer {self.layer!r} gives {activation.shape[-2]} tokens, which is not "
            f"prefix_tokens={self.prefix_tokens} plus a square grid")
      return "tokens"
    shape = "[h, w, c]" if batch_dims == 0 else "[B, h, w, c]"
    raise ValueError(
        f"layer {self.layer!r} gives an activation of shape {tuple(activation.shape)}; "
        f"expected {shape} (or channel-first with layer_layout='NCHW') or tokens [B, N, C]")

  def to_map(self, activation: jax.Array, batch_dims: int = 1) -> jax.Array:
    """The layer's activation -> f32[...,h,w,c]."""
    if self._kind(activation, batch_dims) == "tokens":
      grid = activation[..., self.prefix_tokens:, :]
      side = math.isqrt(grid.shape[-2])
      return grid.reshape(*grid.shape[:-2], side, side, grid.shape[-1])
    if self.layout == "NCHW":
      return jnp.moveaxis(activation, -3, -1)
    return activation

  def splice(self, activation: jax.Array, feats: jax.Array, batch_dims: int = 1) -> jax.Array:
    """The activation with `feats` (a map shaped as `to_map(activation)`) in its place."""
    expected = jax.eval_shape(lambda a: self.to_map(a, batch_dims), activation).shape
    if tuple(feats.shape) != tuple(expected):
      raise ValueError(f"feats: expected the shape of layer {self.layer!r}'s map, "
                       f"{tuple(expected)}, got {tuple(feats.shape)}")
    feats = feats.astype(activation.dtype)
    if self._kind(activation, batch_dims) == "tokens":
      grid = feats.reshape(*feats.shape[:-3], -1, feats.shape[-1])
      return jnp.concatenate([activation[..., :self.prefix_tokens, :], grid], axis=-2)
    if self.layout == "NCHW":
      return jnp.moveaxis(feats, -1, -3)
    return feats


class LayerCapture:
  """One forward pass's record of the layer (see the module doc).

  Args:
    mapping: the layer's name and how its activation becomes a map.
    replacement: None (read the activation) or a map f32[...,h,w,c] to put
      in its place.
    batch_size: B, the number of images in the forward pass (None inside
      `jax.vmap` over images, where the activation is one image's).
  """

  def __init__(self, mapping: ActivationMap, replacement: jax.Array | None = None,
               batch_size: int | None = None):
    self.mapping = mapping
    self.replacement = replacement
    self.batch_size = batch_size
    self.batch_dims = 0 if batch_size is None else 1
    self.activation: jax.Array | None = None
    self.names: list[str] = []
    self.shapes: list[tuple[int, ...] | None] = []

  def visit(self, name: str, output: Any) -> Any:
    """A named submodule's output: recorded; replaced if `name` is the layer."""
    self.names.append(name)
    self.shapes.append(tuple(output.shape) if hasattr(output, "shape") else None)
    return self.reached(output) if name == self.mapping.layer else output

  def reached(self, output: Any) -> Any:
    """The layer's output: recorded, and the replacement returned in its place if any."""
    if self.activation is not None:
      raise ValueError(f"layer {self.mapping.layer!r} runs more than once in a forward pass "
                       "(a shared module); pick a layer that runs once")
    if not hasattr(output, "ndim"):
      raise ValueError(f"layer {self.mapping.layer!r} returns {type(output).__name__}, "
                       "not an array; pick a layer whose output is one activation")
    if self.batch_size is not None and output.shape[:1] != (self.batch_size,):
      raise ValueError(
          f"layer {self.mapping.layer!r} gives shape {tuple(output.shape)}, with no batch axis "
          f"of {self.batch_size} images first: it runs inside the model's own jax.vmap or "
          "scan; pick a layer outside it (an Equinox module mapping one image: batched=False)")
    self.activation = output
    if self.replacement is None:
      self.mapping.to_map(output, self.batch_dims)  # checks the shape
      return output
    return self.mapping.splice(output, self.replacement, self.batch_dims)

  def record(self, activation: jax.Array) -> None:
    """Sets the activation that per-image captures read inside `jax.vmap`."""
    self.activation = activation

  def activation_reached(self) -> jax.Array:
    """The layer's activation; ValueError listing the names seen if the layer never ran."""
    if self.activation is None:
      names = list(dict.fromkeys(self.names))
      examples = ", ".join(repr(n) for n in names[:4] + ["..."] + names[-4:]) if len(
          names) > 8 else ", ".join(repr(n) for n in names)
      raise ValueError(
          f"layer: {self.mapping.layer!r} is not a layer of this model's forward pass "
          f"({len(names)} layers ran: {examples}; salijax.wrapping.layer_names lists them all)")
    return self.activation

  def feature_map(self) -> jax.Array:
    """The layer's activation as a map f32[...,h,w,c]."""
    return self.mapping.to_map(self.activation_reached(), self.batch_dims)
