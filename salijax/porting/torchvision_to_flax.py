"""torchvision state_dict -> salijax Flax variables, through an explicit key table.

    variables = torchvision_to_flax("resnet18", read_pth("resnet18-f37072fd.pth"))
    logits = salijax.models.create("resnet18").apply(variables, images)

`key_table(module)` maps every torch key of the model to where it goes: the
Flax collection, the Flax path (`salijax.models.naming`: "layer1.0.conv1" ->
("layer1_0", "conv1")) and the transform:

  conv weight f32[O,I,kh,kw]         -> params .../kernel f32[kh,kw,I,O]
  linear weight f32[out,in]          -> params .../kernel f32[in,out]
  VGG classifier.0.weight [4096, C*H*W] -> kernel [H*W*C, 4096] (rows reordered:
                                        torch flattens C,H,W, salijax H,W,C)
  conv / linear bias                 -> params .../bias
  BatchNorm weight, bias             -> params .../scale, .../bias
  BatchNorm running_mean, running_var -> batch_stats .../mean, .../var
  BatchNorm num_batches_tracked      -> dropped (optional: torchvision's 2017
                                        checkpoints predate it)
  ViT (`salijax.models.vit`):
  LayerNorm weight, bias             -> params .../scale, .../bias
  self_attention.in_proj_weight [3C, C] -> params .../self_attention/in_proj_kernel [C, 3C]
                                        (kept fused: q, k, v columns in torch's order)
  self_attention.in_proj_bias        -> params .../self_attention/in_proj_bias
  class_token, encoder.pos_embedding -> params class_token, encoder/pos_embedding

Before converting anything, the whole key set and every shape are checked
against `jax.eval_shape` of the model's initialisation; all missing,
unexpected and mis-shaped keys are reported in one ValueError.

The head ("fc" / "classifier.6", linear or mlp, `salijax.models.heads`) is
ported when the checkpoint has a head of the requested kind and class count;
otherwise it is freshly initialised from `key` (exactly the head that
`salijax.models.init(module, key)` draws) and the checkpoint's head keys are
ignored.
"""

import math
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from salijax import models
from salijax.models import architectures, heads, naming, param_layers, vit


class Transform(NamedTuple):
  """How a torch array becomes a Flax leaf.

  Attributes:
    to_flax: the torch array -> the Flax array.
    torch_shape: the Flax leaf's shape -> the torch array's expected shape.
  """

  to_flax: Callable[[np.ndarray], np.ndarray]
  torch_shape: Callable[[tuple[int, ...]], tuple[int, ...]]


SAME = Transform(lambda a: a, lambda s: s)
OIHW_TO_HWIO = Transform(lambda a: a.transpose(2, 3, 1, 0), lambda s: (s[3], s[2], s[0], s[1]))
TRANSPOSE = Transform(lambda a: a.T, lambda s: (s[1], s[0]))


def flat_linear(height: int, width: int, channels: int) -> Transform:
  """A Linear after a flatten: torch [out, C*H*W] -> Flax kernel [H*W*C, out]."""
  # [out, C, H*W] -> [out, H*W, C] (a copy in small blocks), then a transposed view.
  return Transform(
      lambda a: (a.reshape(a.shape[0], channels, height * width).transpose(0, 2, 1)
                 .reshape(a.shape[0], height * width * channels).T),
      lambda s: (s[1], s[0]))


class Entry(NamedTuple):
  """Where one torch key goes; `collection` None = accepted and dropped."""

  collection: str | None
  path: tuple[str, ...]
  transform: Transform


DROPPED = Entry(None, (), SAME)


def key_table(module: Any) -> dict[str, Entry]:
  """Every torch state_dict key of `module`'s architecture (a model of
  `salijax.models.create`) -> its `Entry`."""
  table: dict[str, Entry] = {}
  for layer in module.param_layers():
    path = naming.flax_path(layer.name)
    if layer.kind in (param_layers.CONV, param_layers.CONV_BIAS):
      table[f"{layer.name}.weight"] = Entry("params", (*path, "kernel"), OIHW_TO_HWIO)
    elif layer.kind == param_layers.LINEAR:
      table[f"{layer.name}.weight"] = Entry("params", (*path, "kernel"), TRANSPOSE)
    elif layer.kind == param_layers.FLAT_LINEAR:
      table[f"{layer.name}.weight"] = Entry("params", (*path, "kernel"),
                                            flat_linear(*module.pooled_shape()))
    if layer.kind in (param_layers.CONV_BIAS, param_layers.LINEAR, param_layers.FLAT_LINEAR):
      table[f"{layer.name}.bias"] = Entry("params", (*path, "bias"), SAME)
    if layer.kind == param_layers.BATCH_NORM:
      table.update({
          f"{layer.name}.weight": Entry("params", (*path, "scale"), SAME),
          f"{layer.name}.bias": Entry("params", (*path, "bias"), SAME),
          f"{layer.name}.running_mean": Entry("batch_stats", (*path, "mean"), SAME),
          f"{layer.name}.running_var": Entry("batch_stats", (*path, "var"), SAME),
          f"{layer.name}.num_batches_tracked": DROPPED,
      })
    # Vision Transformer
    if layer.kind == param_layers.LAYER_NORM:
      table[f"{layer.name}.weight"] = Entry("params", (*path, "scale"), SAME)
      table[f"{layer.name}.bias"] = Entry("params", (*path, "bias"), SAME)
    elif layer.kind == param_layers.IN_PROJECTION:
      table[f"{layer.name}.in_proj_weight"] = Entry("params", (*path, "in_proj_kernel"),
                                                    TRANSPOSE)
      table[f"{layer.name}.in_proj_bias"] = Entry("params", (*path, "in_proj_bias"), SAME)
    elif layer.kind == param_layers.PARAMETER:
      table[layer.name] = Entry("params", path, SAME)
  return table


def _checkpoint_head(arrays: Mapping[str, np.ndarray],
                     specs: Mapping[str, heads.HeadSpec]) -> tuple[str | None, int | None]:
  """The kind of head the checkpoint has (a key of `specs`, or None) and its class count."""
  for kind, spec in specs.items():
    weight = arrays.get(f"{spec.layers()[-1]}.weight")
    if weight is not None and weight.ndim == 2:
      return kind, int(weight.shape[0])
  return None, None


_INIT_IMAGE_SIZE = 32  # the smallest every CNN takes; no CNN parameter shape depends on it


def _init_image_size(module: architectures.Model, arrays: Mapping[str, np.ndarray]) -> int:
  """The image size to make `module`'s shapes at: a ViT's is that of the checkpoint's
  positional embedding (its patch size times the grid side of vit_b_16 without one)."""
  if not isinstance(module, models.VisionTransformer):
    return _INIT_IMAGE_SIZE
  patch = module.shape.patch_size
  position = arrays.get("encoder.pos_embedding")
  if position is not None and position.ndim == 3:
    side = math.isqrt(max(position.shape[1] - vit.PREFIX_TOKENS, 0))
    if side > 0 and side * side == position.shape[1] - vit.PREFIX_TOKENS:
      return side * patch
  return vit.VIT_B_16_GRID * patch


def _model(arch: str | architectures.Model, num_classes: int, head: str) -> architectures.Model:
  """`models.create(arch, ...)`, or the given model with that class count and head."""
  if isinstance(arch, str):
    return models.create(arch, num_classes=num_classes, head=head)
  if not isinstance(arch, architectures.Model):
    raise TypeError(f"arch: expected an architecture name or a salijax model, "
                    f"got {type(arch).__name__}")
  if head not in heads.HEADS:
    raise ValueError(f"head: expected one of {heads.HEADS}, got {head!r}")
  return arch.clone(num_classes=num_classes, head=head)


def _module_of(key: str) -> str:
  return key.rsplit(".", 1)[0]


def _leaf(tree: Mapping[str, Any], path: tuple[str, ...]) -> Any:
  for name in path:
    tree = tree[name]
  return tree


def _set_leaf(tree: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
  for name in path[:-1]:
    tree = tree.setdefault(name, {})
  tree[path[-1]] = value


def _describe(shape: tuple[int, ...]) -> str:
  return f"[{', '.join(str(d) for d in shape)}]"


def _mismatches(table: Mapping[str, Entry], arrays: Mapping[str, np.ndarray],
                shapes: Mapping[str, Any]) -> list[str]:
  """One line per kind of problem: missing, unexpected and mis-shaped keys."""
  expected = {k: tuple(e.transform.torch_shape(_leaf(shapes, (e.collection, *e.path)).shape))
              for k, e in table.items() if e is not DROPPED}
  missing = [f"{k} {_describe(s)}" for k, s in expected.items() if k not in arrays]
  unexpected = [f"{k} {_describe(a.shape)}" for k, a in arrays.items() if k not in table]
  mismatched = [f"{k}: expected {_describe(s)}, got {_describe(arrays[k].shape)}"
                for k, s in expected.items() if k in arrays and arrays[k].shape != s]
  return [f"{len(items)} {what}: {', '.join(items)}"
          for what, items in (("missing keys", missing), ("unexpected keys", unexpected),
                              ("shape mismatches", mismatched)) if items]


def torchvision_to_flax(arch: str | architectures.Model, state_dict: Mapping[str, Any], *,
                        num_classes: int | None = None, head: str = "linear",
                        key: jax.Array | None = None) -> dict[str, Any]:
  """Flax variables of `salijax.models.create(arch, ...)` from a torchvision state_dict.

  Args:
    arch: one of `salijax.models.ARCHITECTURES`, or a salijax model (e.g. a
      small `salijax.models.VisionTransformer`) whose num_classes and head
      this call sets.
    state_dict: torch key -> array (numpy, or anything `np.asarray` takes),
      as torchvision's `model.state_dict()` (e.g. from `read_pth`).
    num_classes: the model's class count; None = the checkpoint's.
    head: "linear" or "mlp".
    key: initialises the head when it is not ported (see module doc);
      None = `jax.random.key(0)`.

  Returns:
    {"params": ..., "batch_stats": ...} (no "batch_stats" for vgg11, vgg16 and
    ViTs), f32. A ViT's are for the image size of the checkpoint's positional
    embedding (224 for vit_b_16's).

  Raises:
    ValueError: an unknown `arch` or `head`, or a state_dict that does not fit
      the model; the message lists every missing, unexpected and mis-shaped key.
  """
  if not isinstance(state_dict, Mapping):
    raise TypeError(f"state_dict: expected a mapping of names to arrays, "
                    f"got {type(state_dict).__name__}")
  prefix = models.head_prefix(_model(arch, 1000, head))
  specs = {kind: _model(arch, 1000, kind).head_spec() for kind in heads.HEADS}
  arrays = {str(k): np.asarray(v) for k, v in state_dict.items()}
  checkpoint_head, checkpoint_classes = _checkpoint_head(arrays, specs)
  if checkpoint_head is None:
    # No head to port: a given class count gets a new head; without one, the
    # missing head keys are reported.
    port_head = num_classes is None
    num_classes = 1000 if num_classes is None else num_classes
  else:
    num_classes = checkpoint_classes if num_classes is None else num_classes
    port_head = checkpoint_head == head and num_classes == checkpoint_classes
  module = _model(arch, num_classes, head)
  key = jax.random.key(0) if key is None else key
  image_size = _init_image_size(module, arrays)
  shapes = jax.eval_shape(lambda: models.init(module, key, image_size))

  table = key_table(module)
  if not port_head:
    table = {k: e for k, e in table.items() if not naming.is_under(_module_of(k), prefix)}
    arrays = {k: a for k, a in arrays.items() if not naming.is_under(_module_of(k), prefix)}
  problems = _mismatches(table, arrays, shapes)
  if problems:
    raise ValueError(
        f"state_dict: expected the keys and shapes of torchvision's "
        f"{arch if isinstance(arch, str) else type(arch).__name__} "
        f"(head={head!r}, num_classes={num_classes}), got " + "; ".join(problems))

  variables: dict[str, Any] = {}
  for k, e in table.items():
    if k in arrays and e is not DROPPED:
      array = e.transform.to_flax(arrays[k].astype(np.float32, copy=False))
      _set_leaf(variables, (e.collection, *e.path), jnp.asarray(array))
  if not port_head:
    spec = module.head_spec()
    first = naming.flax_path(spec.layers()[0])
    in_features = _leaf(shapes["params"], first)["kernel"].shape[0]
    fresh = heads.StandaloneHead(spec).init(key, jnp.zeros((1, in_features), jnp.float32))
    variables["params"].update(fresh["params"])
  return variables
