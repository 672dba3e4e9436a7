"""`trainable_mask`: which parameters of a salijax model train, by torchvision prefix."""

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax

from salijax.models import architectures, naming

HEAD = "head"


def trainable_mask(module: nn.Module, params: Any, trainable: Sequence[str]) -> Any:
  """A bool pytree like `params`: True for the leaves under the `trainable` prefixes.

  Args:
    module: the model from `salijax.models.create` that `params` belong to.
    params: its "params" collection (arrays or `jax.ShapeDtypeStruct`s).
    trainable: torchvision module prefixes, e.g. ("layer4", "fc"),
      ("features.16",), ("classifier",); "head" = the replaceable head
      (`salijax.models.head_prefix(module)`, the mlp included).

  Raises:
    TypeError: `trainable` is a single str, or `params` is a variables dict.
    ValueError: a prefix matches no parameter; the message lists the valid
      top-level names.
  """
  if isinstance(trainable, str):
    raise TypeError(f"trainable: expected a sequence of prefixes, got the str {trainable!r}")
  if isinstance(params, dict) and "params" in params:
    raise TypeError("params: expected the 'params' collection, got a variables dict "
                    "with a 'params' key (pass variables['params'])")
  head = architectures.head_prefix(module)
  prefixes = [head if p == HEAD else p for p in trainable]
  layers = {naming.flax_path(layer.name): layer.name for layer in module.param_layers()}
  leaf_names = [_torch_name(layers, path)
                for path, _ in jax.tree_util.tree_flatten_with_path(params)[0]]
  known = naming.with_ancestors(leaf_names)
  unknown = [p for p, q in zip(trainable, prefixes, strict=True) if q not in known]
  if unknown:
    top_level = sorted({name.split(".")[0] for name in leaf_names} | {HEAD})
    raise ValueError(
        f"trainable: expected prefixes of this model's modules, e.g. {top_level} or "
        f"deeper names like {leaf_names[-1]!r}, got unknown {unknown!r}")
  return jax.tree_util.tree_map_with_path(
      lambda path, _: any(naming.is_under(_torch_name(layers, path), p) for p in prefixes),
      params)


def _torch_name(layers: dict[tuple[str, ...], str], path: Sequence[Any]) -> str:
  """The torchvision name of the leaf at `path`: its layer's (`layers`: Flax path -> name),
  or its own for a loose parameter (a ViT's "class_token")."""
  keys = tuple(k.key for k in path)
  return layers.get(keys) or layers.get(keys[:-1]) or naming.torch_name(keys[:-1])
