"""`classifier`: a salijax model and its variables as a `salijax.Classifier`.

The Classifier's functions are frozen dataclasses holding the (hashable) module
and layer name, so two Classifiers of the same model and layer have equal
static fields and share compiled programs; the variables stay pytree leaves.
"""

import dataclasses
from typing import Any

import flax.linen as nn
import jax

from salijax.classifier import Classifier
from salijax.models import architectures, taps
from salijax.models.guided_relu import guided_relu


@dataclasses.dataclass(frozen=True)
class ModelLogits:
  """(variables, images f32[B,H,W,3]) -> logits f32[B,K], inference mode."""

  module: nn.Module

  def __call__(self, variables: Any, images: jax.Array) -> jax.Array:
    return self.module.apply(variables, images)


@dataclasses.dataclass(frozen=True)
class ModelFeatures:
  """(variables, images f32[B,H,W,3]) -> activation f32[B,h,w,c] at `layer`."""

  module: nn.Module
  layer: str

  def __call__(self, variables: Any, images: jax.Array) -> jax.Array:
    return self.module.apply(variables, images, tap=self.layer)


@dataclasses.dataclass(frozen=True)
class ModelHead:
  """(variables, feats f32[B,h,w,c], images f32[B,H,W,3]) -> logits f32[B,K].

  The network from `layer` on, with `feats` in place of the activation there.
  """

  module: nn.Module
  layer: str

  def __call__(self, variables: Any, feats: jax.Array, images: jax.Array) -> jax.Array:
    return self.module.apply(variables, images, tap=self.layer, tap_value=feats)


def classifier(module: nn.Module, variables: Any, layer: str | None = None) -> Classifier:
  """A `Classifier` of a salijax model, in inference mode.

  Its `guided_apply` is the same model with its ReLUs guided
  (`module.clone(relu=guided_relu)`, the same variables), for guided backpropagation.

  Args:
    module: a model from `salijax.models.create`.
    variables: its variables ({"params", "batch_stats"}), the Classifier's leaves.
    layer: the tap that `features` returns and `head` starts from;
      None = `salijax.models.default_tap(module)`.

  Raises:
    ValueError: `layer` is not a tap of `module`.
  """
  names = architectures.tap_names(module)
  layer = architectures.default_tap(module) if layer is None else layer
  taps.check_tap(layer, names)
  return Classifier(variables=variables, apply=ModelLogits(module),
                    features=ModelFeatures(module, layer), head=ModelHead(module, layer),
                    guided_apply=ModelLogits(module.clone(relu=guided_relu)))
