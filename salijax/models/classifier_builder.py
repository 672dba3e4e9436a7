"""`classifier`: a salijax model and its variables as a `salijax.Classifier`.

salijax's models are Flax modules like any other: `classifier` is
`salijax.wrap(module, variables, layer=module.tap_path(layer))`, so a tap is
read and replaced by the same interception as a foreign model's layer, and
guided backpropagation uses the same ReLU rewrite. Two Classifiers of the same
model and layer have equal static fields and share compiled programs.
"""

from typing import Any

import flax.linen as nn

from salijax.classifier import Classifier
from salijax.models import architectures
from salijax.wrapping.wrap import wrap


def classifier(module: nn.Module, variables: Any, layer: str | None = None) -> Classifier:
  """A `Classifier` of a salijax model, in inference mode.

  Args:
    module: a model from `salijax.models.create`.
    variables: its variables ({"params", "batch_stats"}), the Classifier's leaves.
    layer: the tap (a torchvision module name) that `features` returns and
      `head` starts from; None = `salijax.models.default_tap(module)`.

  Raises:
    ValueError: `layer` is not a tap of `module`.
  """
  layer = architectures.default_tap(module) if layer is None else layer
  return wrap(module, variables, layer=architectures.tap_path(module, layer))
