"""The Classifier functions of a wrapped model: apply, features and head by interception.

A wrapped model is any object with `__call__(variables, inputs) -> output`
and, if it has layers, `at_layer(variables, inputs, capture) -> output`, which
runs the same forward pass showing the layer's output to a `LayerCapture`
(`salijax.wrapping.linen_model`, `nnx_model`, `haiku_model`, `equinox_model`,
`plain_function`). Every function applies the preprocessing first and picks
the logits last, so methods and gradients see images in [0, 1] and logits.

  features(v, x) = the layer's map, from a forward pass that reads it;
  head(v, feats, x) = the logits of a forward pass with `feats` in the layer's
      place, every other activation computed from x as usual;
so head(v, features(v, x), x) == apply(v, x), and the gradient of head with
respect to feats is the gradient at the layer in a normal forward pass.
Under `jax.jit` the part of the forward pass that `features` does not need is
removed.
"""

import dataclasses
from collections.abc import Callable
from typing import Any

import jax

from salijax.wrapping.layer_capture import ActivationMap, LayerCapture
from salijax.wrapping.model_output import ModelOutput


def no_preprocessing(images: jax.Array) -> jax.Array:
  """The images as they are."""
  return images


@dataclasses.dataclass(frozen=True)
class WrappedLogits:
  """(variables, images f32[B,H,W,3]) -> logits f32[B,K]."""

  model: Any
  preprocess: Callable[[jax.Array], Any]
  output: ModelOutput

  def __call__(self, variables: Any, images: jax.Array) -> jax.Array:
    return self.output(self.model(variables, self.preprocess(images)))


@dataclasses.dataclass(frozen=True)
class WrappedFeatures:
  """(variables, images f32[B,H,W,3]) -> the layer's map f32[B,h,w,c]."""

  model: Any
  preprocess: Callable[[jax.Array], Any]
  mapping: ActivationMap

  def __call__(self, variables: Any, images: jax.Array) -> jax.Array:
    capture = LayerCapture(self.mapping, batch_size=images.shape[0])
    self.model.at_layer(variables, self.preprocess(images), capture)
    return capture.feature_map()


@dataclasses.dataclass(frozen=True)
class WrappedHead:
  """(variables, feats f32[B,h,w,c], images f32[B,H,W,3]) -> logits f32[B,K]."""

  model: Any
  preprocess: Callable[[jax.Array], Any]
  output: ModelOutput
  mapping: ActivationMap

  def __call__(self, variables: Any, feats: jax.Array, images: jax.Array) -> jax.Array:
    capture = LayerCapture(self.mapping, feats, batch_size=images.shape[0])
    output = self.model.at_layer(variables, self.preprocess(images), capture)
    capture.activation_reached()
    return self.output(output)
