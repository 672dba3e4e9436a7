"""`wrap`: any JAX image classifier as a `salijax.Classifier`, with one call.

    clf = wrap(linen_module, variables, layer="Conv_1")                  # Flax linen
    clf = wrap(nnx_module, layer="blocks.3")                             # Flax NNX
    clf = wrap(hk.transform_with_state(f), (params, state),
               layer="res_net18/~/block_group_3")                        # Haiku
    clf = wrap(eqx_module, layer=lambda m: m.layers[3])                  # Equinox (one image)
    clf = wrap(f) / wrap(f, params)                                      # f(images) / f(params, x)

Every method and metric then runs on `clf`: the black-box ones (RISE, LIME,
insertion/deletion, ...) and the input-gradient ones on any of these; those
that need a layer (the CAMs, SIDU, IBA, ...) once `layer` is given; guided
backpropagation on any model with ReLUs (`salijax.wrapping.guided_relus`).
"""

import sys
from collections.abc import Callable, Mapping
from typing import Any

import flax.linen as nn
from flax import nnx

from salijax.classifier import Classifier
from salijax.wrapping import layer_capture
from salijax.wrapping.guided_relus import guide_relus
from salijax.wrapping.haiku_model import HaikuModel, takes_rng
from salijax.wrapping.layer_capture import ActivationMap
from salijax.wrapping.linen_model import LinenModel
from salijax.wrapping.model_output import ModelOutput, OutputPick
from salijax.wrapping.nnx_model import NnxModel, find_layer
from salijax.wrapping.plain_function import PlainFunction
from salijax.wrapping.wrapped_classifier import (
    WrappedFeatures,
    WrappedHead,
    WrappedLogits,
    no_preprocessing,
)

FRAMEWORKS = ("Flax linen nn.Module", "Flax NNX nnx.Module",
              "Haiku hk.Transformed / hk.TransformedWithState", "Equinox eqx.Module",
              "a plain function f(images) or f(params, images)")


def framework_of(model: Any) -> str:
  """"linen", "nnx", "haiku", "equinox" or "function"; TypeError naming the supported ones."""
  if isinstance(model, Classifier):
    raise TypeError("model: this is already a salijax.Classifier; pass it to methods directly")
  if isinstance(model, nn.Module):
    return "linen"
  if isinstance(model, nnx.Module):
    return "nnx"
  haiku = sys.modules.get("haiku")
  if haiku is not None and isinstance(model, haiku.Transformed | haiku.TransformedWithState):
    return "haiku"
  equinox = sys.modules.get("equinox")
  if equinox is not None and isinstance(model, equinox.Module):
    return "equinox"
  if callable(model):
    return "function"
  raise TypeError(f"model: expected one of {'; '.join(FRAMEWORKS)}; got {type(model).__name__}")


def _check_layer(framework: str, layer: Any) -> None:
  if layer is None:
    return
  if framework == "function":
    raise ValueError("layer: a plain function has no layers to read; wrap the model itself "
                     "(Flax, Haiku, Equinox) for the methods that need one")
  if framework == "equinox":
    if not callable(layer):
      raise TypeError(f"layer: expected a function module -> submodule (as eqx.tree_at takes), "
                      f"got {type(layer).__name__}")
  elif not isinstance(layer, str) or not layer:
    raise TypeError(f"layer: expected the layer's name as a string, got {layer!r}")


def _model_and_variables(framework: str, model: Any, variables: Any, layer: Any,
                         call_kwargs: tuple[tuple[str, Any], ...], batched: bool | None,
                         eval_mode: bool) -> tuple[Any, Any]:
  """The framework adapter and the Classifier's variables."""
  if framework in ("nnx", "equinox") and variables is not None:
    raise ValueError(f"variables: a {framework} module holds its own; expected None")
  if framework in ("linen", "haiku") and variables is None:
    raise ValueError(f"variables: a {framework} model needs its variables (params), got None")
  if batched is not None and framework != "equinox":
    raise ValueError("batched: only for Equinox modules (which map one image by default)")
  if call_kwargs and framework not in ("linen", "haiku"):
    raise ValueError("call_kwargs: only for Flax linen modules and Haiku functions")
  if framework == "linen":
    if not isinstance(variables, Mapping):
      raise TypeError(f"variables: expected the module's variables dict, got "
                      f"{type(variables).__name__}")
    return LinenModel(model, call_kwargs), variables
  if framework == "haiku":
    import haiku as hk  # noqa: PLC0415 (the model is a Haiku one: haiku is imported)
    with_state = isinstance(model, hk.TransformedWithState)
    if with_state and not (isinstance(variables, tuple | list) and len(variables) == 2):
      raise TypeError("variables: a Haiku function with state takes (params, state)")
    return HaikuModel(model, with_state, takes_rng(model.apply), call_kwargs), (
        tuple(variables) if with_state else variables)
  if framework == "nnx":
    if layer is not None:
      find_layer(model, layer)
    graphdef, state = nnx.split(model)
    return NnxModel(graphdef, layer, eval_mode), state
  if framework == "equinox":
    import equinox as eqx  # noqa: PLC0415 (the model is an Equinox one)
    if layer is not None:
      try:
        picked = layer(model)
      except (AttributeError, IndexError, KeyError, TypeError) as error:
        raise ValueError(f"layer: the function found no submodule in this model: {error!r}") \
            from error
      if not callable(picked):
        raise ValueError(f"layer: expected a function picking a callable submodule of the "
                         f"model, got {type(picked).__name__}")
    arrays, static = eqx.partition(model, eqx.is_array)
    from salijax.wrapping.equinox_model import EquinoxModel  # noqa: PLC0415 (needs equinox)
    return EquinoxModel(static, layer, bool(batched)), arrays
  return PlainFunction(model, variables is not None), variables


def wrap(model: Any, variables: Any = None, *, layer: str | Callable[[Any], Any] | None = None,
         preprocess: Callable[[Any], Any] | None = None, output: OutputPick = None,
         call_kwargs: Mapping[str, Any] | None = None, batched: bool | None = None,
         layer_layout: str | None = None, prefix_tokens: int | None = None,
         eval_mode: bool = True) -> Classifier:
  """A `Classifier` of any JAX image classifier (see the module doc).

  Args:
    model: a Flax linen module, a Flax NNX module, a Haiku `transform` /
      `transform_with_state` (or `without_apply_rng`) result, an Equinox
      module, or a function of the images (or of params and images).
    variables: linen: the variables dict; Haiku: params, or (params, state);
      a function: its params, or None if it takes the images only; NNX and
      Equinox: None (the module holds them).
    layer: the layer that `features` reads and `head` starts from: linen, the
      `/`-path of submodule names ("backbone/stage4"); NNX, the `.`-path of
      attributes and indices ("blocks.3"); Haiku, the module name
      ("res_net18/~/block_group_3"); Equinox, a function picking the
      submodule (`lambda m: m.layers[3]`). None: no features/head, so only the
      methods that need none run.
    preprocess: images f32[B,H,W,3] in [0, 1] -> the model's input (e.g.
      `salijax.wrapping.Preprocess(mean=..., std=..., channels_first=True)`);
      runs inside the Classifier. None: the images as they are.
    output: where the logits are in the model's output: None (they are the
      output), a dict key or attribute name, a tuple index, or a function.
    call_kwargs: extra keyword arguments of the model's call (linen, Haiku),
      e.g. {"train": False} or {"is_training": False}.
    batched: Equinox only: True if the module takes a batch; default False
      (one image, vmapped by salijax).
    layer_layout: "NHWC" or "NCHW", the layer activation's axes; default
      "NCHW" for unbatched Equinox modules (channel-first per image), "NHWC"
      otherwise.
    prefix_tokens: for token layers [B,N,C] (vision transformers), how many
      leading tokens (class, registers) to drop before reshaping the other
      N - prefix_tokens to a square map; required for such layers.
    eval_mode: NNX only: call `.eval()` on the module's copy (no dropout,
      BatchNorm running statistics).

  Returns:
    A Classifier whose `apply`, `features`, `head` and `guided_apply` run the
    model; `head(v, features(v, x), x) == apply(v, x)`.

  Raises:
    TypeError: a model of no supported framework, or options of the wrong type.
    ValueError: options that do not fit the framework, or an unknown NNX
      layer. An unknown linen or Haiku layer, or a layer whose activation is
      not an image or token map, is reported when a method first traces
      `features` or `head`, with the layers that ran.
  """
  framework = framework_of(model)
  _check_layer(framework, layer)
  if layer_layout is not None and layer_layout not in layer_capture.LAYOUTS:
    raise ValueError(f"layer_layout: expected one of {layer_capture.LAYOUTS}, got {layer_layout!r}")
  if prefix_tokens is not None and (isinstance(prefix_tokens, bool) or not isinstance(
      prefix_tokens, int) or prefix_tokens < 0):
    raise ValueError(f"prefix_tokens: expected an integer >= 0, got {prefix_tokens!r}")
  if preprocess is not None and not callable(preprocess):
    raise TypeError(f"preprocess: expected a function of the images, got {preprocess!r}")
  kwargs = tuple(sorted((call_kwargs or {}).items()))
  adapter, leaves = _model_and_variables(framework, model, variables, layer, kwargs, batched,
                                         eval_mode)
  preprocess = preprocess or no_preprocessing
  pick = ModelOutput(output)
  logits = WrappedLogits(adapter, preprocess, pick)
  features = head = None
  if layer is not None:
    if layer_layout is None:
      layer_layout = "NCHW" if framework == "equinox" and not batched else "NHWC"
    name = layer if isinstance(layer, str) else getattr(layer, "__name__", "layer")
    mapping = ActivationMap(name, layer_layout, prefix_tokens)
    features = WrappedFeatures(adapter, preprocess, mapping)
    head = WrappedHead(adapter, preprocess, pick, mapping)
  return Classifier(variables=leaves, apply=logits, features=features, head=head,
                    guided_apply=guide_relus(logits))
