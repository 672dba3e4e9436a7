"""`initializer`: a fresh initialisation of a wrapped model, by its framework's own initialisers.

A Flax linen module is initialised with `module.init` (with the model's
`call_kwargs`) and a Haiku function with `transformed.init` (with its default
arguments: Haiku creates state such as BatchNorm's averages in training mode),
on the model's input for one image (the images preprocessed as the Classifier
does), so the variables are those of a newly built model: the same tree as the
Classifier's, each layer drawn by its own initialiser. NNX and Equinox modules are built
already initialised and plain functions have no initialiser: for them, and
for a Classifier not built by `salijax.wrap`, there is none (None).

    init = initializer(clf)                     # None: no framework initialiser
    fresh = init(jax.random.key(0), images)     # images f32[B,H,W,3] in [0, 1]
"""

from collections.abc import Callable
from typing import Any

import jax

from salijax.classifier import Classifier
from salijax.compute_dtype import original
from salijax.wrapping.haiku_model import HaikuModel
from salijax.wrapping.linen_model import LinenModel
from salijax.wrapping.wrapped_classifier import WrappedLogits


def initializer(clf: Classifier) -> Callable[[jax.Array, jax.Array], Any] | None:
  """(key, images f32[B,H,W,3]) -> fresh variables of the model `clf` wraps; None (module doc)."""
  logits = original(clf.apply)  # a compute dtype's cast: the model under it
  if not isinstance(logits, WrappedLogits):
    return None
  model = logits.model
  if isinstance(model, LinenModel):
    def init_linen(key: jax.Array, images: jax.Array) -> Any:
      return model.module.init(key, logits.preprocess(images[:1]), **dict(model.call_kwargs))
    return init_linen
  if isinstance(model, HaikuModel):
    def init_haiku(key: jax.Array, images: jax.Array) -> Any:
      return model.transformed.init(key, logits.preprocess(images[:1]))
    return init_haiku
  return None
