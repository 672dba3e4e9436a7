"""Model-parameter randomisation (Adebayo et al., NeurIPS 2018), block by block from the logits.

A salijax model's layers with weights (`param_layers()`) are grouped into
blocks, listed from the logits down (`randomization_blocks`):
  ResNet: the head ("fc", with "fc.1" and "fc.4" for head="mlp"), then every
    residual block from the top ("layer4.1", "layer4.0", ..., "layer1.0"; its
    convs, BatchNorms and downsample), then "stem" (conv1 + bn1).
  VGG: the head ("classifier.6"), "classifier.3", "classifier.0", then every
    conv of `features` from the top, named by its index ("features.25", ...,
    "features.0"), with the BatchNorm after it in the `_bn` variants.

Re-drawing a block takes its values from one fresh initialisation of the
whole model, `salijax.models.init(module, key)`: every layer is re-drawn with
its own initialiser (torchvision's), exactly as in a newly built model.
BatchNorm scale and bias are re-initialised (to 1 and 0) like every weight;
their running statistics follow `batch_stats`:
  "reset" (default): mean 0, variance 1, as in a fresh model: Adebayo et al.
    re-initialise all weights, and statistics measured on the trained
    weights mean nothing for random ones.
  "keep": the trained statistics stay, so only the learned weights change.

    for block, randomized in cascading_randomization(module, variables, key):
      ...   # blocks[0..k] re-drawn, the rest trained
    for block, randomized in independent_randomization(module, variables, key):
      ...   # only `block` re-drawn
"""

from collections.abc import Iterator, Sequence
from typing import Any

import flax
import jax
import numpy as np

from salijax import validation
from salijax.models import architectures, naming, param_layers, resnet, vgg

STEM = "stem"
BATCH_STATS_CHOICES = ("reset", "keep")
_INIT_IMAGE_SIZE = vgg.MIN_IMAGE_SIZE  # parameter shapes and values do not depend on it


def _own_block(module: architectures.Model, layer: str) -> str:
  """The block of a layer that starts one (a BatchNorm joins the layer before it)."""
  head = module.head_spec().prefix
  if naming.is_under(layer, head):
    return head
  if isinstance(module, resnet.ResNet):
    parts = layer.split(".")
    return ".".join(parts[:2]) if parts[0].startswith("layer") else STEM
  return layer


def block_layers(module: Any) -> dict[str, tuple[str, ...]]:
  """Block name -> the torchvision names of its layers with weights, logits first.

  Raises:
    TypeError: `module` is not a salijax model.
  """
  if not isinstance(module, architectures.Model):
    raise TypeError(
        f"module: expected a salijax model (salijax.models.create), got {type(module).__name__}")
  blocks: dict[str, list[str]] = {}
  block = None
  for layer in module.param_layers():
    if layer.kind != param_layers.BATCH_NORM or block is None:
      block = _own_block(module, layer.name)
    blocks.setdefault(block, []).append(layer.name)
  return {name: tuple(layers) for name, layers in reversed(blocks.items())}


def randomization_blocks(module: Any) -> tuple[str, ...]:
  """The blocks of a salijax model from the logits down (see the module doc)."""
  return tuple(block_layers(module))


def _leaf_in(path: tuple[Any, ...], prefixes: Sequence[tuple[str, ...]]) -> bool:
  """Whether a variables leaf (collection, module..., name) lies in one of the Flax paths."""
  keys = tuple(str(getattr(entry, "key", entry)) for entry in path[1:])
  return any(keys[:len(prefix)] == prefix for prefix in prefixes)


def _check_arguments(module: Any, key: Any, blocks: Sequence[str] | None, batch_stats: str
                     ) -> tuple[dict[str, tuple[str, ...]], tuple[str, ...]]:
  layers = block_layers(module)
  validation.check_key(key)
  if batch_stats not in BATCH_STATS_CHOICES:
    raise ValueError(f"batch_stats: expected one of {list(BATCH_STATS_CHOICES)}, got"
                     f" {batch_stats!r}")
  if blocks is None:
    return layers, tuple(layers)
  if isinstance(blocks, str):
    raise TypeError(f"blocks: expected a sequence of block names, got the str {blocks!r}")
  blocks = tuple(blocks)
  unknown = [b for b in blocks if b not in layers]
  if unknown or not blocks or len(set(blocks)) != len(blocks):
    raise ValueError(f"blocks: expected distinct names among {list(layers)}, got"
                     f" {list(blocks)}")
  return layers, blocks


def _fresh_variables(module: Any, variables: Any, key: jax.Array) -> tuple[Any, Any]:
  """(the trained variables as plain dicts, the fresh ones), checked to have one structure."""
  fresh = architectures.init(module, key, _INIT_IMAGE_SIZE)
  expected = jax.tree_util.tree_map(lambda x: (tuple(x.shape), np.dtype(x.dtype)), fresh)
  try:
    variables = flax.core.unfreeze(variables)
    got = jax.tree_util.tree_map(lambda x: (tuple(np.shape(x)), np.dtype(x.dtype)), variables)
  except (TypeError, ValueError, AttributeError) as error:
    raise TypeError(f"variables: expected the variables of this module, got"
                    f" {type(variables).__name__}") from error
  if got != expected:
    raise ValueError("variables: expected the variables of this module (same tree, shapes"
                     " and dtypes as salijax.models.init(module, key)), got a different tree")
  return variables, fresh


def _mix(variables: Any, fresh: Any, layers: Sequence[str], batch_stats: str) -> Any:
  """`variables` with the leaves of `layers` taken from `fresh` (batch_stats as documented)."""
  prefixes = [naming.flax_path(layer) for layer in layers]

  def choose(path: tuple[Any, ...], trained: jax.Array, new: jax.Array) -> jax.Array:
    collection = str(getattr(path[0], "key", path[0]))
    if collection == "batch_stats" and batch_stats == "keep":
      return trained
    return new if _leaf_in(path, prefixes) else trained

  return jax.tree_util.tree_map_with_path(choose, variables, fresh)


def _cascade(variables: Any, fresh: Any, layers: dict[str, tuple[str, ...]],
             blocks: tuple[str, ...], batch_stats: str) -> Iterator[tuple[str, Any]]:
  done: list[str] = []
  for block in blocks:
    done.extend(layers[block])
    yield block, _mix(variables, fresh, done, batch_stats)


def _one_at_a_time(variables: Any, fresh: Any, layers: dict[str, tuple[str, ...]],
                   blocks: tuple[str, ...], batch_stats: str) -> Iterator[tuple[str, Any]]:
  for block in blocks:
    yield block, _mix(variables, fresh, layers[block], batch_stats)


def cascading_randomization(module: Any, variables: Any, key: jax.Array, *,
                            blocks: Sequence[str] | None = None,
                            batch_stats: str = "reset") -> Iterator[tuple[str, Any]]:
  """Cumulative randomisation: yields (block, variables with this and every earlier block re-drawn).

  Args:
    module: a salijax model (`salijax.models.create`).
    variables: its trained variables ({"params"[, "batch_stats"]}); not modified.
    key: the PRNG key of the fresh initialisation `salijax.models.init(module, key)`.
    blocks: the blocks to re-draw, in this order; None = `randomization_blocks(module)`
      (from the logits down).
    batch_stats: "reset" or "keep", the running statistics of re-drawn BatchNorms
      (module doc).

  Returns:
    An iterator of (block name, variables); leaves outside the re-drawn blocks
    are the trained arrays themselves.

  Raises:
    ValueError: unknown or repeated blocks, a bad `batch_stats`, variables of
      another model.
    TypeError: `module` is not a salijax model, a bad key.
  """
  layers, blocks = _check_arguments(module, key, blocks, batch_stats)
  variables, fresh = _fresh_variables(module, variables, key)
  return _cascade(variables, fresh, layers, blocks, batch_stats)


def independent_randomization(module: Any, variables: Any, key: jax.Array, *,
                              blocks: Sequence[str] | None = None,
                              batch_stats: str = "reset") -> Iterator[tuple[str, Any]]:
  """One block at a time: yields (block, variables with only that block re-drawn).

  Arguments, results and errors as `cascading_randomization`.
  """
  layers, blocks = _check_arguments(module, key, blocks, batch_stats)
  variables, fresh = _fresh_variables(module, variables, key)
  return _one_at_a_time(variables, fresh, layers, blocks, batch_stats)
