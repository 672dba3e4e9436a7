"""Model-parameter randomisation (Adebayo et al., NeurIPS 2018), group by group from the logits.

Works on any Classifier. Its variables are split into top-level groups, listed
from the logits down (`randomization_blocks`; `salijax.metrics.parameter_groups`):
the top-level modules or attributes of a wrapped model in reverse forward
order; for salijax's models their blocks, ResNet: "fc", "layer4.1", ...,
"layer1.0", "stem"; VGG: "classifier.6", "classifier.3", "classifier.0",
"features.25", ..., "features.0".

A re-drawn group takes its leaves from one fresh draw of the whole model
(`salijax.metrics.fresh_variables`: the caller's `init`, the framework's own
initialisers for Flax linen and Haiku models (salijax's included), a
permutation of each leaf otherwise). Running statistics (linen collections
other than "params", Haiku's state; NNX's are leaves like any other) follow
`batch_stats`:
  "reset" (default): re-drawn with their group, as in a fresh model: Adebayo
    et al. re-initialise all weights, and statistics measured on the trained
    weights mean nothing for random ones.
  "keep": the trained statistics stay, so only the learned weights change.

    for block, randomized in cascading_randomization(clf, images, key):
      ...   # blocks[0..k] re-drawn, the rest trained: randomized is a Classifier
    for block, randomized in independent_randomization(clf, images, key):
      ...   # only `block` re-drawn
"""

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import jax

from salijax import validation
from salijax.classifier import Classifier
from salijax.metrics.fresh_variables import fresh_leaves
from salijax.metrics.parameter_groups import ParameterGroups, parameter_groups

BATCH_STATS_CHOICES = ("reset", "keep")


def randomization_blocks(clf: Classifier, images: Any) -> tuple[str, ...]:
  """The groups of `clf` from the logits down (see the module doc); images f32[B,H,W,3]."""
  validation.check_classifier(clf, images)
  return parameter_groups(clf, images).names


def _check_arguments(clf: Classifier, images: Any, key: Any, blocks: Sequence[str] | None,
                     batch_stats: str) -> tuple[ParameterGroups, tuple[str, ...]]:
  validation.check_classifier(clf, images)
  validation.check_key(key)
  if batch_stats not in BATCH_STATS_CHOICES:
    raise ValueError(f"batch_stats: expected one of {list(BATCH_STATS_CHOICES)}, got"
                     f" {batch_stats!r}")
  if isinstance(blocks, str):
    raise TypeError(f"blocks: expected a sequence of block names, got the str {blocks!r}")
  groups = parameter_groups(clf, images)
  if blocks is None:
    return groups, groups.names
  blocks = tuple(blocks)
  unknown = [b for b in blocks if b not in groups.names]
  if unknown or not blocks or len(set(blocks)) != len(blocks):
    raise ValueError(f"blocks: expected distinct names among {list(groups.names)}, got"
                     f" {list(blocks)}")
  return groups, blocks


def _randomized(clf: Classifier, fresh: list[jax.Array], groups: ParameterGroups,
                redrawn: set[str], batch_stats: str) -> Classifier:
  """`clf` with the leaves of the `redrawn` groups from `fresh` (batch_stats as documented)."""
  leaves, tree = jax.tree.flatten(clf.variables)
  mixed = [new if group in redrawn and not (state and batch_stats == "keep") else trained
           for trained, new, group, state in zip(leaves, fresh, groups.of_leaf, groups.state,
                                                 strict=True)]
  return clf.replace(variables=jax.tree.unflatten(tree, mixed))


def _cascade(clf: Classifier, fresh: list[jax.Array], groups: ParameterGroups,
             blocks: tuple[str, ...], batch_stats: str) -> Iterator[tuple[str, Classifier]]:
  for k, block in enumerate(blocks):
    yield block, _randomized(clf, fresh, groups, set(blocks[:k + 1]), batch_stats)


def _one_at_a_time(clf: Classifier, fresh: list[jax.Array], groups: ParameterGroups,
                   blocks: tuple[str, ...], batch_stats: str) -> Iterator[tuple[str, Classifier]]:
  for block in blocks:
    yield block, _randomized(clf, fresh, groups, {block}, batch_stats)


def cascading_randomization(clf: Classifier, images: Any, key: jax.Array, *,
                            blocks: Sequence[str] | None = None,
                            init: Callable[[jax.Array], Any] | None = None,
                            batch_stats: str = "reset") -> Iterator[tuple[str, Classifier]]:
  """Cumulative randomisation: yields (block, clf with this and every earlier block re-drawn).

  Args:
    clf: the trained Classifier (not modified).
    images: f32[B,H,W,3] in [0, 1]; the first image traces the forward order
      and shapes a framework initialiser's input.
    key: the PRNG key of the fresh draw.
    blocks: the blocks to re-draw, in this order; None = `randomization_blocks`
      (from the logits down).
    init: None, or key -> fresh variables of `clf`'s tree (`fresh_variables`).
    batch_stats: "reset" or "keep", the running statistics of re-drawn blocks
      (module doc).

  Returns:
    An iterator of (block name, Classifier); leaves outside the re-drawn
    blocks are the trained arrays themselves.

  Raises:
    ValueError: bad images, unknown or repeated blocks, a bad `batch_stats`,
      fresh variables of another tree.
    TypeError: not a Classifier, a bad key or `init`, blocks given as a str.
  """
  groups, blocks = _check_arguments(clf, images, key, blocks, batch_stats)
  fresh = fresh_leaves(clf, images, key, init)
  return _cascade(clf, fresh, groups, blocks, batch_stats)


def independent_randomization(clf: Classifier, images: Any, key: jax.Array, *,
                              blocks: Sequence[str] | None = None,
                              init: Callable[[jax.Array], Any] | None = None,
                              batch_stats: str = "reset") -> Iterator[tuple[str, Classifier]]:
  """One block at a time: yields (block, clf with only that block re-drawn).

  Arguments, results and errors as `cascading_randomization`.
  """
  groups, blocks = _check_arguments(clf, images, key, blocks, batch_stats)
  fresh = fresh_leaves(clf, images, key, init)
  return _one_at_a_time(clf, fresh, groups, blocks, batch_stats)
