"""`layer_names`: the layers of a model that `salijax.wrap(..., layer=NAME)` can read.

    for name, shape in layer_names(module, variables, images):   # Flax linen
      print(name, shape)

Flax linen and Haiku layers are found by running the forward pass once
abstractly (`jax.eval_shape`, nothing computed) on `images`, and come with the
shape of their output (None for an output that is not one array); Flax NNX
layers are the module's submodules, with no shapes. Equinox layers are picked
by a function, not a name.
"""

from collections.abc import Callable, Mapping
from typing import Any

import jax

from salijax.wrapping.layer_capture import ActivationMap, LayerCapture
from salijax.wrapping.nnx_model import module_names
from salijax.wrapping.wrap import framework_of, wrap


def layer_names(model: Any, variables: Any = None, images: Any = None, *,
                preprocess: Callable[[Any], Any] | None = None,
                call_kwargs: Mapping[str, Any] | None = None
                ) -> list[tuple[str, tuple[int, ...] | None]]:
  """(name, output shape) of each layer, in the order they run (see the module doc).

  Args:
    model, variables, preprocess, call_kwargs: as `salijax.wrap` takes them.
    images: f32[B,H,W,3] (or a jax.ShapeDtypeStruct), for linen and Haiku.
  """
  framework = framework_of(model)
  if framework == "nnx":
    return [(name, None) for name in module_names(model)]
  if framework not in ("linen", "haiku"):
    raise TypeError(f"layer_names: layers are named in Flax and Haiku models, not in a "
                    f"{framework} model")
  if images is None:
    raise ValueError("images: expected example images f32[B,H,W,3] to run the forward pass on")
  clf = wrap(model, variables, preprocess=preprocess, call_kwargs=call_kwargs)
  capture = LayerCapture(ActivationMap(layer=""), batch_size=images.shape[0])

  def forward(v, x):
    clf.apply.model.at_layer(v, clf.apply.preprocess(x), capture)

  jax.eval_shape(forward, clf.variables, images)
  return list(dict(zip(capture.names, capture.shapes, strict=True)).items())
